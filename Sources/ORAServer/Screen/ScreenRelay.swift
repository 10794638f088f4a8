import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ORACore
import Synchronization

/// Carries a session's screen between the helper's viewer and the agent: each viewer that attaches gets its own
/// agent leg (and so its own VNC server on the machine), the two legs meet only through single-use tickets, and the
/// viewer's bytes pass through `RFBClientStreamFilter`, which drops keyboard, pointer and clipboard input unless the
/// session's control is granted at that moment.
///
/// The bytes themselves are carried by the channel handlers (`ScreenGlueHandler`, `ScreenViewerInputHandler`), whose
/// `ScreenForwarder` also applies back-pressure; this type holds the tickets, the pairs and the totals.
final class ScreenRelay: Sendable {
    /// How long a viewer waits for the agent to open its leg.
    static let agentLegTimeout: Duration = .seconds(15)

    /// One session's screen connections so far, for `session.ended`.
    struct Totals: Sendable, Hashable {
        var connections = 0
        var bytesToViewer: Int64 = 0
        var bytesFromViewer: Int64 = 0
        var inputDropped = 0
        var inputBlockedRecorded = false

        var auditValue: AuditValue {
            .object([
                "connections": .integer(Int64(connections)), "bytes_to_viewer": .integer(bytesToViewer),
                "bytes_from_viewer": .integer(bytesFromViewer), "input_dropped": .integer(Int64(inputDropped)),
            ])
        }
    }

    private struct Connection: Sendable {
        var session: UUID
        var viewer: any ScreenLeg
        var agent: StreamScreenLeg?
        var waiting: CheckedContinuation<StreamScreenLeg?, Never>?
    }

    private struct State: Sendable {
        var tickets: ScreenTickets
        var connections: [UUID: Connection] = [:]
        var totals: [UUID: Totals] = [:]

        /// The connections of `session`.
        func connections(of session: UUID) -> [UUID] {
            connections.filter { $0.value.session == session }.map(\.key)
        }
    }

    private let state: Mutex<State>
    private let clock: ServerClock
    private let metrics: ServerMetrics
    /// What every ticket of this replica begins with (`ScreenTickets.issuer`).
    let issuer: String

    /// Creates the relay; tickets are issued and checked at `clock`'s time, and the bytes relayed are counted in
    /// `metrics` too.
    /// - Parameter instance: this replica's id; the first hex digits of its tickets name it.
    init(clock: ServerClock, metrics: ServerMetrics, instance: UUID) {
        self.clock = clock
        self.metrics = metrics
        issuer = Self.issuer(of: instance)
        state = Mutex(State(tickets: ScreenTickets(issuer: issuer)))
    }

    /// What the tickets of the replica `instance` begin with: the first digits of its id.
    static func issuer(of instance: UUID) -> String {
        String(instance.uuidString.lowercased().prefix(ScreenTickets.issuerLength))
    }

    /// Whether this replica issued `ticket` (a leg with another replica's ticket is carried there).
    func issuedHere(_ ticket: String) -> Bool {
        ScreenTickets.issuer(of: ticket) == issuer
    }

    /// How many screen connections are relayed now.
    var openConnections: Int {
        state.withLock { $0.connections.count }
    }

    // MARK: Tickets

    /// A viewer ticket for `session`, for the operator `holder`, and when it expires.
    /// - Parameter requestedFrom: the address of the helper who asks for it.
    func issueViewerTicket(
        for session: UUID, holder: String, requestedFrom: String
    ) -> (ticket: String, expires: Date) {
        let now = clock.now()
        let ticket = state.withLock {
            $0.tickets.issue(for: session, leg: .viewer, holder: holder, requestedFrom: requestedFrom, now: now)
        }
        return (ticket, ScreenTickets.expiry(ofTicketIssuedAt: now))
    }

    /// Whether `ticket` would admit a viewer now (checked before the upgrade; used by `redeem`).
    func checkViewerTicket(_ ticket: String) throws(ScreenTicketError) -> ScreenTickets.Claim {
        try state.withLock { state throws(ScreenTicketError) in
            try state.tickets.check(ticket, for: .viewer, now: clock.now())
        }
    }

    /// Uses `ticket` for `leg`.
    func redeem(_ ticket: String, for leg: ScreenTickets.Leg) throws(ScreenTicketError) -> ScreenTickets.Claim {
        try state.withLock { state throws(ScreenTicketError) in
            try state.tickets.redeem(ticket, for: leg, now: clock.now())
        }
    }

    // MARK: Pairing

    /// How many viewers one session may have at once: each starts a VNC server on the person's machine.
    static let maximumViewersPerSession = 4

    /// How many viewers of `session` are connected or connecting now.
    func viewers(of session: UUID) -> Int {
        state.withLock { $0.connections(of: session).count }
    }

    /// Registers a viewer of `session` and issues the ticket its agent leg must present.
    /// - Returns: the connection's id and the agent ticket, or nil when the session has its most viewers already.
    func addViewer(of session: UUID, outbound: any ScreenLeg) -> (connection: UUID, agentTicket: String)? {
        let connection = UUID()
        return state.withLock { state -> (UUID, String)? in
            guard state.connections(of: session).count < Self.maximumViewersPerSession else { return nil }
            state.connections[connection] = Connection(session: session, viewer: outbound)
            state.totals[session, default: Totals()].connections += 1
            return (
                connection,
                state.tickets.issue(for: session, leg: .agent, holder: connection.uuidString, now: clock.now())
            )
        }
    }

    /// Waits until the agent leg of `connection` arrives, or `agentLegTimeout` passes.
    /// - Returns: the agent leg's writer, or nil when it did not come (or the session ended meanwhile).
    func agentLeg(of connection: UUID) async -> StreamScreenLeg? {
        let timer = Task {
            try? await Task.sleep(for: Self.agentLegTimeout)
            self.resumeWaiting(connection, with: nil)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> StreamScreenLeg?? in
                guard let current = state.connections[connection] else { return .some(nil) }
                if let agent = current.agent { return .some(agent) }
                state.connections[connection]?.waiting = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Joins the agent leg that presented a ticket for `connection`.
    /// - Returns: false when the viewer is gone (or has its agent leg already).
    func attachAgent(to connection: UUID, outbound: StreamScreenLeg) -> Bool {
        let found = state.withLock { state -> CheckedContinuation<StreamScreenLeg?, Never>?? in
            guard var current = state.connections[connection], current.agent == nil else { return .none }
            let waiting = current.waiting
            current.agent = outbound
            current.waiting = nil
            state.connections[connection] = current
            return .some(waiting)
        }
        guard let waiting = found else { return false }
        waiting?.resume(returning: outbound)
        return true
    }

    private func resumeWaiting(_ connection: UUID, with writer: StreamScreenLeg?) {
        let waiting = state.withLock { state in
            let waiting = state.connections[connection]?.waiting
            state.connections[connection]?.waiting = nil
            return waiting
        }
        waiting?.resume(returning: writer)
    }

    /// Forgets `connection` and closes both of its legs: the viewer's first (with a close frame saying why, if it
    /// takes one within two seconds), then the agent's; `failure` when a side broke the protocol.
    func close(_ connection: UUID, failure: Bool = false, reason: String? = nil) async {
        let removed = state.withLock { $0.connections.removeValue(forKey: connection) }
        guard let removed else { return }
        removed.waiting?.resume(returning: nil)
        await removed.viewer.close(failure: failure, reason: reason)
        await removed.agent?.close(failure: failure, reason: reason)
    }

    // MARK: Accounting

    /// Adds bytes relayed for `session` (none once it has ended: its totals are in `session.ended`).
    func count(session: UUID, toViewer: Int = 0, fromViewer: Int = 0) {
        metrics.relayed(toViewer: toViewer, fromViewer: fromViewer)
        state.withLock { state in
            state.totals[session]?.bytesToViewer += Int64(toViewer)
            state.totals[session]?.bytesFromViewer += Int64(fromViewer)
        }
    }

    /// Counts a leg of `kind` carried to another replica, or not.
    func countCarried(_ kind: ScreenTickets.Leg, carried: Bool) {
        metrics.carried(leg: kind.rawValue, carried)
    }

    /// Adds `count` input messages dropped while view-only.
    /// - Returns: true the first time in the session, when `input.blocked` is to be recorded.
    func countDroppedInput(session: UUID, count: Int) -> Bool {
        state.withLock { state in
            guard state.totals[session] != nil else { return false }
            state.totals[session]?.inputDropped += count
            guard state.totals[session]?.inputBlockedRecorded == false else { return false }
            state.totals[session]?.inputBlockedRecorded = true
            return true
        }
    }

    /// The totals of `session` so far.
    func totals(of session: UUID) -> Totals? {
        state.withLock { $0.totals[session] }
    }

    /// The session ended (its totals are in `session.ended` already): its tickets stop admitting, its connections
    /// close, and its totals are forgotten.
    func end(session: UUID) async {
        let connections = state.withLock { state in
            state.tickets.revoke(session: session)
            state.totals[session] = nil
            return state.connections(of: session)
        }
        for connection in connections {
            await close(connection, reason: "the session ended")
        }
    }
}

/// One side of a screen connection: a viewer's WebSocket, or a stream on the relay port (always the agent's).
protocol ScreenLeg: Sendable {
    /// Closes this side; `failure` when the other side broke the protocol.
    func close(failure: Bool, reason: String?) async
}

/// A viewer in the browser: binary WebSocket messages.
struct WebSocketScreenLeg: ScreenLeg {
    let outbound: WebSocketOutboundWriter
    let channel: any Channel

    /// Sends a close frame, giving up after two seconds (a viewer that stopped reading never takes it); then the
    /// connection is closed either way.
    func close(failure: Bool, reason: String?) async {
        let outbound = self.outbound
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await outbound.close(failure ? .protocolError : .normalClosure, reason: reason) }
            group.addTask { try? await Task.sleep(for: .seconds(2)) }
            await group.next()
            group.cancelAll()
        }
        if channel.isActive {
            // Let the close frame reach the wire before the connection goes.
            try? await Task.sleep(for: .milliseconds(50))
            try? await channel.close()
        }
    }
}

/// An agent, or a native viewer through `ora connect`: the bytes themselves, on the relay port.
struct StreamScreenLeg: ScreenLeg {
    let channel: any Channel

    func write(_ buffer: ByteBuffer) async throws {
        try await channel.writeAndFlush(buffer)
    }

    func close(failure: Bool, reason: String?) async {
        try? await channel.close()
    }
}
