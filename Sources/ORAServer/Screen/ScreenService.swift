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
    /// Where the replica that issued a ticket reaches its relay port, by the ticket's issuer: nil when no running
    /// replica issues such tickets, or it has not said.
    private let locate: @Sendable (_ issuer: String) async -> ScreenCarrier.Target?
    /// The relay port agents and native viewers are told, when a load balancer in front listens on another port.
    private let publicPort: Int?

    /// The relay port this replica listens on (set once the relay listens).
    var relayPort: Int {
        get { port.withLock { $0 } }
        set { port.withLock { $0 = newValue } }
    }

    /// The relay port agents and native viewers are told to connect to: `screen.public_relay_port`, or the one this
    /// replica listens on.
    var advertisedRelayPort: Int {
        publicPort ?? relayPort
    }

    /// - Parameters:
    ///   - publicPort: the relay port agents and native viewers are told, when it is not the one listened on.
    ///   - locate: where the replica whose tickets begin with an issuer reaches its relay port.
    init(
        broker: SessionBroker, links: AgentLinks, relay: ScreenRelay, clock: ServerClock, logger: Logger,
        publicPort: Int?, locate: @escaping @Sendable (_ issuer: String) async -> ScreenCarrier.Target?
    ) {
        self.publicPort = publicPort
        self.locate = locate
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
    /// - Parameter source: the address of the helper who asks, recorded as the viewer's (its connection may come
    ///   through another replica).
    func viewerTicket(
        for snapshot: SessionSnapshot, by identity: OperatorService.Identity, source: String
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
        let (ticket, expires) = relay.issueViewerTicket(for: id, holder: identity.person.dn, requestedFrom: source)
        return document(ticket: ticket, expiresAt: expires)
    }

    /// What `POST /api/v1/sessions/{id}/screen` answers with `ticket` (of this replica or another: a viewer that
    /// presents it here is carried to the replica that issued it).
    func document(ticket: String, expiresAt: Date) -> TicketDocument {
        TicketDocument(
            ticket: ticket, path: "/viewer/v1/screen?ticket=\(ticket)", relayPort: advertisedRelayPort,
            expiresAt: expiresAt)
    }

    /// Checks a viewer's ticket before the WebSocket upgrade; a refusal is recorded.
    func admitViewer(ticket: String?, source: String) async throws(ScreenError) {
        // Another replica's ticket is checked there, once carried; only that such a replica runs is checked here.
        if let ticket, !relay.issuedHere(ticket) {
            guard await locate(ScreenTickets.issuer(of: ticket)) == nil else { return }
            await refuse(.unknown, leg: .viewer, source: source)
            throw .ticketRefused(.unknown)
        }
        do throws(ScreenTicketError) {
            _ = try relay.checkViewerTicket(ticket ?? "")
        } catch {
            await refuse(error, leg: .viewer, source: source)
            throw .ticketRefused(error)
        }
    }

    // MARK: Legs

    /// A connection on the relay port sent its opening line; called on its event loop, the rest goes on in a task.
    func opened(_ opening: ScreenStream.Opening, channel: any Channel) {
        Task { await self.serveStream(opening, channel: channel) }
    }

    private func serveStream(_ opening: ScreenStream.Opening, channel: any Channel) async {
        let source = channel.remoteAddress?.ipAddress ?? "unknown"
        let (ticket, leg) = (opening.ticket, StreamScreenLeg(channel: channel))
        if !relay.issuedHere(ticket) {
            // A leg carried here is never carried on: two replicas that name each other's address would otherwise
            // pass it between them for ever.
            guard !opening.carried else {
                await refuse(.unknown, leg: opening.leg, source: source)
                await leg.close(failure: true, reason: nil)
                return
            }
            await carryStream(opening.leg, ticket: ticket, leg: leg, source: source)
        } else if opening.leg == .agent {
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
        // Recorded with the address of the helper who asked for the ticket, and where the connection came from
        // when that is another address (another replica carrying it here, or a proxy).
        var details: [String: AuditValue] = [:]
        var source = source
        if let helper = claim.requestedFrom, helper != source {
            details["connection_from"] = .string(source)
            source = helper
        }
        guard let live = broker.live(session), live.state.isActive, live.offer.helper.dn == claim.holder else {
            await leg.close(failure: true, reason: "session_not_active")
            return nil
        }
        guard let (connection, agentTicket) = relay.addViewer(of: session, outbound: leg) else {
            await leg.close(failure: true, reason: "too_many_viewers")
            return nil
        }
        details["connection"] = .string(connection.uuidString)
        let metadata: Logger.Metadata = ["session.id": "\(session)", "screen.connection": "\(connection)"]
        // The session may have ended while this viewer was being registered; then it goes with it.
        guard broker.live(session)?.state.isActive == true else {
            await relay.close(connection, reason: "session_not_active")
            return nil
        }
        guard
            await links.send(
                .openScreen(session: session, ticket: agentTicket, port: advertisedRelayPort), to: live.offer.machine),
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
                    details: details))
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
        if !relay.issuedHere(ticket) {
            await carryViewer(ticket: ticket, leg: leg, channel: viewerChannel, source: source, next: next)
            return
        }
        guard let admitted = await admit(ticket: ticket, leg: leg, source: source) else { return }
        let (viewerHooks, agentHooks, received, failure) = hooks(for: admitted)
        do {
            try await Self.relay(
                viewerChannel, to: admitted.agent.channel, viewerHooks: viewerHooks, agentHooks: agentHooks,
                filtering: true, next: next)
        } catch {
            logger.debug("viewer leg ended", metadata: admitted.metadata.merging(["error": "\(error)"]) { $1 })
        }
        // The viewer is closed first (with 1002 when it broke the protocol), then the agent's leg.
        let broken = failure.value.withLock { $0 }
        await finish(admitted, received: received.value.withLock { $0 }, failure: broken)
    }

    /// Joins a browser's viewer to the agent's leg (or to the leg opened on the replica that holds the agent):
    /// its binary frames go, filtered when `filtering`, from its WebSocket pipeline straight to the agent's leg,
    /// and the agent's bytes come back as binary frames straight from its channel. Returns when the viewer's
    /// WebSocket closes.
    private static func relay(
        _ viewerChannel: any Channel, to agentChannel: any Channel, viewerHooks: ScreenGlueHooks,
        agentHooks: ScreenGlueHooks, filtering: Bool, next: () async throws -> ByteBuffer?
    ) async throws {
        let marker = ByteBuffer(bytes: SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        try await viewerChannel.eventLoop.submit {
            let decoder = try viewerChannel.pipeline.syncOperations.handler(
                type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
            try viewerChannel.pipeline.syncOperations.addHandler(
                ScreenViewerInputHandler(agent: agentChannel, hooks: viewerHooks, marker: marker, filtering: filtering),
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
    }

    // MARK: Legs carried to another replica

    /// Opens `kind`'s leg on the relay port of the replica that issued `ticket`; on failure the leg that came here
    /// is closed (and, when no running replica issues such tickets, a refused ticket recorded).
    private func carry(
        _ kind: ScreenTickets.Leg, ticket: String, leg: any ScreenLeg, source: String
    ) async -> (any Channel, Logger.Metadata)? {
        let issuer = ScreenTickets.issuer(of: ticket)
        guard let target = await locate(issuer) else {
            relay.countCarried(kind, carried: false)
            await refuse(.unknown, leg: kind, source: source)
            await leg.close(failure: true, reason: ScreenTicketError.unknown.code)
            return nil
        }
        let metadata: Logger.Metadata = [
            "leg": "\(kind.rawValue)", "screen.replica": "\(target.address)", "source": "\(source)",
        ]
        do {
            let channel = try await ScreenCarrier.open(kind, ticket: ticket, at: target)
            relay.countCarried(kind, carried: true)
            logger.info("carrying a screen leg to the replica that issued its ticket", metadata: metadata)
            return (channel, metadata)
        } catch {
            relay.countCarried(kind, carried: false)
            logger.warning(
                "could not carry a screen leg to the replica that issued its ticket",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
            await leg.close(failure: true, reason: "replica_unavailable")
            return nil
        }
    }

    /// Serves a browser's viewer with another replica's ticket: its bytes go unfiltered to the leg opened there,
    /// which checks, filters and records them as for a viewer of its own.
    private func carryViewer(
        ticket: String, leg: any ScreenLeg, channel viewerChannel: any Channel, source: String,
        next: () async throws -> ByteBuffer?
    ) async {
        guard let (remote, metadata) = await carry(.viewer, ticket: ticket, leg: leg, source: source) else { return }
        // Counted by the replica that holds the machine, once for the whole cluster.
        let uncounted = ScreenGlueHooks(counted: { _ in })
        do {
            try await Self.relay(
                viewerChannel, to: remote, viewerHooks: uncounted, agentHooks: uncounted, filtering: false,
                next: next)
        } catch {
            logger.debug("carried viewer leg ended", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        await leg.close(failure: false, reason: nil)
        try? await remote.close()
    }

    /// Serves an agent's leg or a native viewer (`ora connect`) with another replica's ticket: the bytes go both
    /// ways unchanged; the other replica answers the opening line, and this one passes its answer on.
    private func carryStream(_ kind: ScreenTickets.Leg, ticket: String, leg: StreamScreenLeg, source: String) async {
        guard let (remote, _) = await carry(kind, ticket: ticket, leg: leg, source: source) else { return }
        // Counted by the replica that holds the machine, once for the whole cluster.
        let uncounted = ScreenGlueHooks(counted: { _ in })
        await Self.pair(leg.channel, with: remote, filtering: false, hooks: uncounted, partnerHooks: uncounted)
    }

    /// Tells the stream leg `here` it is admitted and joins it to `partner` both ways, `here`'s bytes filtered when
    /// `filtering`; returns once both have closed.
    private static func pair(
        _ here: any Channel, with partner: any Channel, filtering: Bool, hooks: ScreenGlueHooks,
        partnerHooks: ScreenGlueHooks
    ) async {
        do {
            try await here.writeAndFlush(ByteBuffer(string: ScreenStream.accepted))
            try await join(here, to: partner, filtering: filtering, hooks: hooks)
            try await join(partner, to: here, filtering: false, hooks: partnerHooks)
        } catch {
            here.close(promise: nil)
            partner.close(promise: nil)
        }
        try? await here.closeFuture.get()
        try? await partner.closeFuture.get()
    }

    /// Serves a native viewer (a stream from `ora connect`): once paired, both legs are joined on the relay's event
    /// loop by `ScreenGlueHandler`, with the viewer's side filtered.
    private func serveStreamViewer(ticket: String, leg: StreamScreenLeg, source: String) async {
        guard let admitted = await admit(ticket: ticket, leg: leg, source: source) else { return }
        let (viewerChannel, agentChannel) = (leg.channel, admitted.agent.channel)
        let (viewerHooks, agentHooks, received, failure) = hooks(for: admitted)
        await Self.pair(
            viewerChannel, with: agentChannel, filtering: true, hooks: viewerHooks, partnerHooks: agentHooks)
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
