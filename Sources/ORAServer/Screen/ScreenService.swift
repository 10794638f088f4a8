import Foundation
import HTTPTypes
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ORACore
import ORARelay

/// The screen of a live session, for its helper: issues viewer tickets, and for each viewer that presents one asks
/// the agent to open a screen leg, pairs the two, and relays between them until either side leaves or the session
/// ends. Every opened, closed and refused screen connection is recorded; dropped input once per session.
final class ScreenService: Sendable {
    /// What `POST /api/v1/sessions/{id}/screen` answers.
    struct TicketDocument: Encodable {
        var ticket: String
        var path: String
        var expiresAt: Date

        enum CodingKeys: String, CodingKey {
            case ticket, path
            case expiresAt = "expires_at"
        }
    }

    private let broker: SessionBroker
    private let gateway: AgentGateway
    private let relay: ScreenRelay
    private let logger: Logger

    init(broker: SessionBroker, gateway: AgentGateway, relay: ScreenRelay, logger: Logger) {
        self.broker = broker
        self.gateway = gateway
        self.relay = relay
        self.logger = logger
    }

    // MARK: Viewer tickets

    /// A single-use viewer ticket for `id`, for its helper, while the novice has accepted.
    /// - Throws: `APIError` 404 for a session the operator cannot see, 403 for someone else's, 409 when the session
    ///   is not active or runs on another replica.
    func viewerTicket(for id: UUID, by identity: OperatorService.Identity) throws(APIError) -> TicketDocument {
        let snapshot = try broker.session(id, for: identity)
        guard snapshot.helperDN == identity.person.dn else {
            throw APIError(.forbidden, code: "forbidden", message: "only the helper of this session may see its screen")
        }
        guard let live = broker.live(id) else {
            if snapshot.hasEnded {
                throw APIError(.conflict, code: "session_ended", message: "the session has ended")
            }
            throw APIError(
                .conflict, code: "session_elsewhere",
                message: "the session runs on another server replica; ask that replica for the screen")
        }
        guard live.state.isActive else {
            throw APIError(
                .conflict, code: "not_accepted", message: "the person at the machine has not accepted the session")
        }
        let ticket = relay.issueViewerTicket(for: id, holder: identity.person.dn)
        return TicketDocument(
            ticket: ticket, path: "/viewer/v1/screen?ticket=\(ticket)",
            expiresAt: Date().addingTimeInterval(Double(ScreenTickets.lifetime.components.seconds)))
    }

    /// Checks a viewer's ticket before the WebSocket upgrade; a refusal is recorded and answered with 403.
    func admitViewer(ticket: String?, source: String) async throws(APIError) {
        do throws(ScreenTicketError) {
            _ = try relay.checkViewerTicket(ticket ?? "")
        } catch {
            await refuse(error, leg: .viewer, source: source)
            throw APIError(.forbidden, code: error.code, message: error.description)
        }
    }

    // MARK: Legs

    /// Serves one viewer: redeems its ticket, has the agent open a leg, and relays until either side leaves.
    func serveViewer(
        ticket: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, source: String
    ) async {
        let claim: ScreenTickets.Claim
        do throws(ScreenTicketError) {
            claim = try relay.redeem(ticket, for: .viewer)
        } catch {
            await refuse(error, leg: .viewer, source: source)
            try? await outbound.close(.policyViolation, reason: error.code)
            return
        }
        let session = claim.session
        guard let live = broker.live(session), live.state.isActive, live.offer.helper.dn == claim.holder else {
            try? await outbound.close(.policyViolation, reason: "session_not_active")
            return
        }
        let (connection, agentTicket) = relay.addViewer(of: session, outbound: outbound)
        let metadata: Logger.Metadata = ["session.id": "\(session)", "screen.connection": "\(connection)"]
        guard await gateway.send(.openScreen(session: session, ticket: agentTicket), to: live.offer.machine),
            let agent = await relay.agentLeg(of: connection)
        else {
            logger.notice("the agent did not open the screen", metadata: metadata)
            await relay.close(connection, code: .unexpectedServerError, reason: "agent_unavailable")
            return
        }
        do throws(APIError) {
            try await broker.record(
                AuditEvent(
                    .screenOpened, actor: .operator(dn: live.offer.helper.dn, account: live.offer.helper.account),
                    machine: live.offer.machine, session: session, source: source,
                    policy: .init(version: live.offer.policyVersion, names: live.offer.policies), outcome: .success,
                    details: ["connection": .string(connection.uuidString)]))
        } catch {
            await relay.close(connection, code: .unexpectedServerError, reason: "audit_unavailable")
            return
        }
        logger.notice("screen opened", metadata: metadata)
        var filter = RFBClientStreamFilter()
        var received: Int64 = 0
        var failure: String?
        do {
            for try await message in inbound.messages(maxSize: ScreenRelay.maximumMessageSize) {
                guard case .binary(let buffer) = message else { continue }
                guard let current = broker.live(session), current.state.isActive else { break }
                filter.controlGranted = current.state.hasControl
                let dropped = filter.droppedInputMessages
                let passed = try filter.filter(buffer.readableBytesView)
                received += Int64(buffer.readableBytes)
                relay.count(session: session, fromViewer: buffer.readableBytes)
                if filter.droppedInputMessages > dropped {
                    await inputDropped(filter.droppedInputMessages - dropped, in: session, offer: live.offer)
                }
                if !passed.isEmpty { try await agent.write(.binary(ByteBuffer(bytes: passed))) }
            }
            try filter.finish()
        } catch let error as RFBStreamError {
            failure = error.description
        } catch {
            logger.debug("viewer leg ended", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        if let failure {
            logger.warning(
                "closing a viewer that broke the RFB protocol",
                metadata: metadata.merging(["error": "\(failure)"]) { $1 })
        }
        await relay.close(
            connection, code: failure == nil ? .normalClosure : .protocolError,
            reason: failure == nil ? nil : "rfb_error")
        try? await broker.record(
            AuditEvent(
                .screenClosed, actor: .operator(dn: live.offer.helper.dn, account: live.offer.helper.account),
                machine: live.offer.machine, session: session, source: source,
                policy: .init(version: live.offer.policyVersion, names: live.offer.policies),
                outcome: failure == nil ? .success : .failure,
                details: [
                    "connection": .string(connection.uuidString), "bytes_from_viewer": .integer(received),
                    "error": .text(failure),
                ]))
        logger.notice("screen closed", metadata: metadata)
    }

    /// Serves one agent leg: its first message is the ticket the server sent with `open_screen`; then everything
    /// it sends goes to the viewer.
    func serveAgent(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, source: String) async {
        var messages = inbound.messages(maxSize: ScreenRelay.maximumMessageSize).makeAsyncIterator()
        // The ticket comes first, and soon; a leg that does not present one is closed.
        let first: WebSocketMessage? = await withTaskGroup(of: Void.self) { group in
            group.addTask {
                guard (try? await Task.sleep(for: .seconds(10))) != nil else { return }
                try? await outbound.close(.policyViolation, reason: "ticket_expected")
            }
            defer { group.cancelAll() }
            return try? await messages.next()
        }
        guard case .text(let ticket) = first else {
            try? await outbound.close(.policyViolation, reason: "ticket_expected")
            return
        }
        let claim: ScreenTickets.Claim
        do throws(ScreenTicketError) {
            claim = try relay.redeem(ticket, for: .agent)
        } catch {
            await refuse(error, leg: .agent, source: source)
            try? await outbound.close(.policyViolation, reason: error.code)
            return
        }
        guard let connection = claim.holder.flatMap(UUID.init(uuidString:)),
            let (viewer, session) = relay.attachAgent(to: connection, outbound: outbound)
        else {
            try? await outbound.close(.goingAway, reason: "viewer_gone")
            return
        }
        do {
            while let message = try await messages.next() {
                guard case .binary(let buffer) = message else { continue }
                relay.count(session: session, toViewer: buffer.readableBytes)
                try await viewer.write(.binary(buffer))
            }
        } catch {
            logger.debug("screen leg of the agent ended", metadata: ["error": "\(error)"])
        }
        await relay.close(connection)
    }

    // MARK: Recording

    private func refuse(_ error: ScreenTicketError, leg: ScreenTickets.Leg, source: String) async {
        logger.warning(
            "screen connection refused", metadata: ["leg": "\(leg.rawValue)", "reason": "\(error.code)"])
        try? await broker.record(
            AuditEvent(
                .screenRefused, actor: .system(ServerApplication.instanceName), source: source, outcome: .denied,
                details: ["leg": .string(leg.rawValue), "reason": .string(error.code)]))
    }

    private func inputDropped(_ count: Int, in session: UUID, offer: Offer) async {
        guard relay.countDroppedInput(session: session, count: count) else { return }
        try? await broker.record(
            AuditEvent(
                .inputBlocked, actor: .operator(dn: offer.helper.dn, account: offer.helper.account),
                machine: offer.machine, session: session, source: nil,
                policy: .init(version: offer.policyVersion, names: offer.policies), outcome: .denied,
                details: ["where": "server", "messages": .integer(Int64(count))]))
    }
}
