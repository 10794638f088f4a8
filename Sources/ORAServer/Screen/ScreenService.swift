import Crypto
import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ORACore
import ORARelay
import Synchronization

/// The screen of a live session, for its helper: issues viewer tickets, and for each viewer that presents one asks
/// the agent to open a screen leg, pairs the two, and relays between them until either side leaves or the session
/// ends. Every opened, closed and refused screen connection is recorded; dropped input once per session.
final class ScreenService: Sendable {
    /// What `POST /api/v1/sessions/{id}/screen` answers.
    struct TicketDocument: Encodable {
        var ticket: String
        var path: String
        var relayPort: Int
        var expiresAt: Date

        enum CodingKeys: String, CodingKey {
            case ticket, path
            case relayPort = "relay_port"
            case expiresAt = "expires_at"
        }
    }

    private let broker: SessionBroker
    private let links: AgentLinks
    private let relay: ScreenRelay
    private let logger: Logger
    private let port = Mutex(0)
    /// Refused tickets recorded lately, by source address.
    static let refusalsRecordedPerMinute = 20
    private let refusals = Mutex(RefusalSampler(perMinute: ScreenService.refusalsRecordedPerMinute))
    private let clock: ServerClock

    /// The relay port agents and native viewers connect to (set once the relay listens).
    var relayPort: Int {
        get { port.withLock { $0 } }
        set { port.withLock { $0 = newValue } }
    }

    init(broker: SessionBroker, links: AgentLinks, relay: ScreenRelay, clock: ServerClock, logger: Logger) {
        self.clock = clock
        self.broker = broker
        self.links = links
        self.relay = relay
        self.logger = logger
    }

    // MARK: Viewer tickets

    /// A single-use viewer ticket for the session `snapshot` shows, for its helper, while the novice has accepted.
    /// - Throws: `ScreenError`: `.onlyTheHelperMaySeeTheScreen` for someone else's session; `.sessionEnded`,
    ///   `.notAccepted`, `.sessionElsewhere` or `.tooManyViewers` when no viewer may join now.
    func viewerTicket(
        for snapshot: SessionSnapshot, by identity: OperatorService.Identity
    ) throws(ScreenError)
        -> TicketDocument
    {
        let id = snapshot.id
        guard snapshot.helperDN == identity.person.dn else {
            throw .onlyTheHelperMaySeeTheScreen
        }
        guard let live = broker.live(id) else {
            if snapshot.hasEnded {
                throw .sessionEnded
            }
            throw .sessionElsewhere
        }
        guard live.state.isActive else {
            throw .notAccepted
        }
        guard relay.viewers(of: id) < ScreenRelay.maximumViewersPerSession else {
            throw .tooManyViewers(ScreenRelay.maximumViewersPerSession)
        }
        let (ticket, expires) = relay.issueViewerTicket(for: id, holder: identity.person.dn)
        return TicketDocument(
            ticket: ticket, path: "/viewer/v1/screen?ticket=\(ticket)", relayPort: relayPort, expiresAt: expires)
    }

    /// Checks a viewer's ticket before the WebSocket upgrade; a refusal is recorded.
    func admitViewer(ticket: String?, source: String) async throws(ScreenError) {
        do throws(ScreenTicketError) {
            _ = try relay.checkViewerTicket(ticket ?? "")
        } catch {
            await refuse(error, leg: .viewer, source: source)
            throw .ticketRefused(error)
        }
    }

    // MARK: Legs

    /// A connection on the relay port sent its opening line; called on its event loop, the rest goes on in a task.
    func opened(leg: ScreenTickets.Leg, ticket: String, channel: any Channel) {
        Task { await self.serveStream(leg: leg, ticket: ticket, channel: channel) }
    }

    private func serveStream(leg kind: ScreenTickets.Leg, ticket: String, channel: any Channel) async {
        let source = channel.remoteAddress?.ipAddress ?? "unknown"
        let leg = StreamScreenLeg(channel: channel)
        if kind == .agent {
            await attachAgent(ticket: ticket, leg: leg, source: source)
        } else {
            await serveStreamViewer(ticket: ticket, leg: leg, source: source)
        }
    }

    /// A viewer admitted and paired with its agent leg.
    private struct Admitted {
        var session: UUID
        var connection: UUID
        var offer: Offer
        var agent: StreamScreenLeg
        var metadata: Logger.Metadata
    }

    /// Redeems a viewer's ticket, has the agent open its leg, and records `screen.opened`; on any failure the
    /// viewer's leg is closed (and a refused ticket recorded).
    private func admit(ticket: String, leg: any ScreenLeg, source: String) async -> Admitted? {
        let claim: ScreenTickets.Claim
        do throws(ScreenTicketError) {
            claim = try relay.redeem(ticket, for: .viewer)
        } catch {
            await refuse(error, leg: .viewer, source: source)
            await leg.close(failure: true, reason: error.code)
            return nil
        }
        let session = claim.session
        guard let live = broker.live(session), live.state.isActive, live.offer.helper.dn == claim.holder else {
            await leg.close(failure: true, reason: "session_not_active")
            return nil
        }
        guard let (connection, agentTicket) = relay.addViewer(of: session, outbound: leg) else {
            await leg.close(failure: true, reason: "too_many_viewers")
            return nil
        }
        let metadata: Logger.Metadata = ["session.id": "\(session)", "screen.connection": "\(connection)"]
        // The session may have ended while this viewer was being registered; then it goes with it.
        guard broker.live(session)?.state.isActive == true else {
            await relay.close(connection, reason: "session_not_active")
            return nil
        }
        guard
            await links.send(
                .openScreen(session: session, ticket: agentTicket, port: relayPort), to: live.offer.machine),
            let agent = await relay.agentLeg(of: connection)
        else {
            logger.notice("the agent did not open the screen", metadata: metadata)
            await relay.close(connection, failure: true, reason: "agent_unavailable")
            return nil
        }
        do throws(SessionError) {
            try await broker.record(
                AuditEvent(
                    .screenOpened, time: clock.timestamp,
                    actor: .operator(dn: live.offer.helper.dn, account: live.offer.helper.account),
                    machine: live.offer.machine, session: session, source: source,
                    policy: .init(version: live.offer.policyVersion, names: live.offer.policies), outcome: .success,
                    details: ["connection": .string(connection.uuidString)]))
        } catch {
            await relay.close(connection, failure: true, reason: "audit_unavailable")
            return nil
        }
        logger.notice("screen opened", metadata: metadata)
        return Admitted(session: session, connection: connection, offer: live.offer, agent: agent, metadata: metadata)
    }

    /// Serves a viewer in the browser. Once paired, its binary frames go, filtered, from its WebSocket pipeline
    /// straight to the agent's leg (`ScreenViewerInputHandler`), and the agent's bytes come back as binary frames
    /// straight from its channel (`ScreenGlueHandler`). Frames that arrived before that are passed on in order
    /// here; then this task only follows the WebSocket until it closes.
    /// - Parameters:
    ///   - channel: the viewer's channel.
    ///   - next: the viewer's next data; nil at the end.
    func serveViewer(
        ticket: String, leg: any ScreenLeg, channel viewerChannel: any Channel, source: String,
        next: () async throws -> ByteBuffer?
    ) async {
        guard let admitted = await admit(ticket: ticket, leg: leg, source: source) else { return }
        let agentChannel = admitted.agent.channel
        let (viewerHooks, agentHooks, received, failure) = hooks(for: admitted)
        let marker = ByteBuffer(bytes: SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        do {
            try await viewerChannel.eventLoop.submit {
                let decoder = try viewerChannel.pipeline.syncOperations.handler(
                    type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
                try viewerChannel.pipeline.syncOperations.addHandler(
                    ScreenViewerInputHandler(agent: agentChannel, hooks: viewerHooks, marker: marker),
                    position: .after(decoder))
            }.get()
            try await Self.join(agentChannel, to: viewerChannel, filtering: false, framed: true, hooks: agentHooks)
            var marked = false
            while let buffer = try await next() {
                guard !marked else { continue }
                let early = buffer
                marked = early == marker
                try await viewerChannel.eventLoop.submit {
                    let input = try viewerChannel.pipeline.syncOperations.handler(type: ScreenViewerInputHandler.self)
                    if early == marker { input.go() } else { input.early(early) }
                }.get()
            }
        } catch {
            logger.debug("viewer leg ended", metadata: admitted.metadata.merging(["error": "\(error)"]) { $1 })
        }
        // The viewer is closed first (with 1002 when it broke the protocol), then the agent's leg.
        let broken = failure.value.withLock { $0 }
        await finish(admitted, received: received.value.withLock { $0 }, failure: broken)
    }

    /// Serves a native viewer (a stream from `ora connect`): once paired, both legs are joined on the relay's event
    /// loop by `ScreenGlueHandler`, with the viewer's side filtered.
    private func serveStreamViewer(ticket: String, leg: StreamScreenLeg, source: String) async {
        guard let admitted = await admit(ticket: ticket, leg: leg, source: source) else { return }
        let (viewerChannel, agentChannel) = (leg.channel, admitted.agent.channel)
        let (viewerHooks, agentHooks, received, failure) = hooks(for: admitted)
        do {
            try await viewerChannel.writeAndFlush(ByteBuffer(string: ScreenStream.accepted))
            try await Self.join(viewerChannel, to: agentChannel, filtering: true, hooks: viewerHooks)
            try await Self.join(agentChannel, to: viewerChannel, filtering: false, hooks: agentHooks)
        } catch {
            viewerChannel.close(promise: nil)
            agentChannel.close(promise: nil)
        }
        try? await viewerChannel.closeFuture.get()
        try? await agentChannel.closeFuture.get()
        await finish(admitted, received: received.value.withLock { $0 }, failure: failure.value.withLock { $0 })
    }

    /// What the glue of a viewer's connection reports to: the session's totals, its state, dropped input, and how
    /// the viewer broke the protocol (if it did).
    private func hooks(
        for admitted: Admitted
    ) -> (
        viewer: ScreenGlueHooks, agent: ScreenGlueHooks, received: Shared<Int64>,
        failure: Shared<String?>
    ) {
        let (session, offer) = (admitted.session, admitted.offer)
        let received = Shared<Int64>(0)
        let failure = Shared<String?>(nil)
        let (broker, relay) = (self.broker, self.relay)
        let viewer = ScreenGlueHooks(
            counted: { count in
                relay.count(session: session, fromViewer: count)
                received.value.withLock { $0 += Int64(count) }
            },
            state: {
                let state = broker.live(session)?.state
                return (state?.isActive ?? false, state?.hasControl ?? false)
            },
            dropped: { count in Task { await self.inputDropped(count, in: session, offer: offer) } },
            failed: { description in failure.value.withLock { $0 = $0 ?? description } })
        let agent = ScreenGlueHooks(counted: { relay.count(session: session, toViewer: $0) })
        return (viewer, agent, received, failure)
    }

    /// Adds the glue behind `channel`'s opening handler and lets it read again.
    private static func join(
        _ channel: any Channel, to partner: any Channel, filtering: Bool, framed: Bool = false,
        hooks: ScreenGlueHooks
    ) async throws {
        try await channel.eventLoop.submit {
            let opening = try channel.pipeline.syncOperations.handler(type: ScreenOpeningHandler.self)
            try channel.pipeline.syncOperations.addHandler(
                ScreenGlueHandler(partner: partner, filtering: filtering, framed: framed, hooks: hooks),
                position: .after(opening))
            opening.startForwarding()
        }.get()
    }

    /// Closes both legs of a viewer's connection and records `screen.closed`.
    private func finish(_ admitted: Admitted, received: Int64, failure: String?) async {
        if let failure {
            logger.warning(
                "closing a viewer that broke the RFB protocol",
                metadata: admitted.metadata.merging(["error": "\(failure)"]) { $1 })
        }
        await relay.close(admitted.connection, failure: failure != nil, reason: failure == nil ? nil : "rfb_error")
        let offer = admitted.offer
        broker.recordEventually(
            AuditEvent(
                .screenClosed, time: clock.timestamp,
                actor: .operator(dn: offer.helper.dn, account: offer.helper.account),
                machine: offer.machine, session: admitted.session, source: nil,
                policy: .init(version: offer.policyVersion, names: offer.policies),
                outcome: failure == nil ? .success : .failure,
                details: [
                    "connection": .string(admitted.connection.uuidString), "bytes_from_viewer": .integer(received),
                    "error": .text(failure),
                ]))
        logger.notice("screen closed", metadata: admitted.metadata)
    }

    /// An agent's leg, admitted by the ticket the server sent with `open_screen`: it is told so, and the viewer's
    /// side takes it from there.
    private func attachAgent(ticket: String, leg: StreamScreenLeg, source: String) async {
        let claim: ScreenTickets.Claim
        do throws(ScreenTicketError) {
            claim = try relay.redeem(ticket, for: .agent)
        } catch {
            await refuse(error, leg: .agent, source: source)
            await leg.close(failure: true, reason: error.code)
            return
        }
        do {
            try await leg.write(ByteBuffer(string: ScreenStream.accepted))
        } catch {
            await leg.close(failure: false, reason: nil)
            return
        }
        guard let connection = claim.holder.flatMap(UUID.init(uuidString:)),
            relay.attachAgent(to: connection, outbound: leg)
        else {
            await leg.close(failure: false, reason: "viewer_gone")
            return
        }
    }

    // MARK: Recording

    /// Records a refused ticket, at most `refusalsRecordedPerMinute` per source address a minute, each with how
    /// many were only counted before it: anyone who can reach the relay port can present made-up tickets, and must
    /// not be able to fill the audit log with them.
    private func refuse(_ error: ScreenTicketError, leg: ScreenTickets.Leg, source: String) async {
        guard case .record(let suppressed) = refusals.withLock({ $0.sample(from: source, now: clock.instant()) }) else {
            return
        }
        var details: [String: AuditValue] = ["leg": .string(leg.rawValue), "reason": .string(error.code)]
        if suppressed > 0 { details["suppressed_before"] = .integer(Int64(suppressed)) }
        logger.warning(
            "screen connection refused",
            metadata: ["leg": "\(leg.rawValue)", "reason": "\(error.code)", "source": "\(source)"])
        broker.recordEventually(
            AuditEvent(
                .screenRefused, time: clock.timestamp, actor: .system(ServerApplication.instanceName), source: source,
                outcome: .denied,
                details: details))
    }

    private func inputDropped(_ count: Int, in session: UUID, offer: Offer) async {
        guard relay.countDroppedInput(session: session, count: count) else { return }
        broker.recordEventually(
            AuditEvent(
                .inputBlocked, time: clock.timestamp,
                actor: .operator(dn: offer.helper.dn, account: offer.helper.account),
                machine: offer.machine, session: session, source: nil,
                policy: .init(version: offer.policyVersion, names: offer.policies), outcome: .denied,
                details: ["where": "server", "messages": .integer(Int64(count))]))
    }
}

/// A value shared between the event loop and tasks.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }
}
