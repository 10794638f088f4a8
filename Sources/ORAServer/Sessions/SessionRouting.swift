import Foundation
import Logging
import ORACore
import ORAStore
import ServiceLifecycle

/// Sessions across replicas: a session runs on the replica its machine's agent is connected to, and any replica
/// answers for it. Offers and helper actions go to that replica (`ReplicaBus`); reads come from the copy each
/// replica writes of its sessions. Sessions of a replica that stopped without ending them (it crashed) are ended
/// by whichever replica notices first, as `server_restart`.
final class SessionRouting: Service, Sendable {
    private let intake: OfferIntake
    private let broker: SessionBroker
    private let desk: InvitationDesk
    private let links: AgentLinks
    private let bus: ReplicaBus
    private let store: ReplicaStore
    fileprivate let logger: Logger
    private let clock: ServerClock

    init(
        intake: OfferIntake,
        broker: SessionBroker,
        desk: InvitationDesk,
        links: AgentLinks,
        bus: ReplicaBus,
        store: ReplicaStore,
        clock: ServerClock,
        logger: Logger
    ) {
        self.intake = intake
        self.desk = desk
        self.clock = clock
        self.broker = broker
        self.links = links
        self.bus = bus
        self.store = store
        self.logger = logger
    }

    /// What this replica answers another that asks it to act on a machine or session held here.
    static func answer(
        _ call: ReplicaCall, intake: OfferIntake, broker: SessionBroker, desk: InvitationDesk, gateway: AgentGateway,
        operators: OperatorService, screens: ScreenService
    ) async -> ReplicaAnswer {
        /// `identity` with its groups as the directory has them now, resolved here as for any request.
        func resolved(_ identity: OperatorService.Identity) async throws(SessionError) -> OperatorService.Identity {
            do throws(OperatorError) {
                return try await operators.identity(of: identity.person, expiresAt: identity.expiresAt)
            } catch {
                throw .refusedElsewhere(ReplicaRefusal(error))
            }
        }
        do throws(SessionError) {
            switch call {
            case .openInvitation(let identity, let invitation, let mode, let ticket, let reason, let source):
                let opening = try await desk.open(
                    invitation, mode: mode, ticket: ticket, reason: reason, by: resolved(identity), source: source)
                return .opening(
                    session: opening.session, machine: opening.machine, challenge: opening.challenge,
                    offered: opening.offered?.id)
            case .proveInvitation(let identity, let session, let proof, let source):
                return .session(
                    try await desk.prove(proof, session: session, by: resolved(identity), source: source).id)
            case .offer(let identity, let machine, let mode, let ticket, let reason, let source):
                // Groups as the directory has them now, resolved here as for any offer.
                let resolved: OperatorService.Identity
                do throws(OperatorError) {
                    resolved = try await operators.identity(of: identity.person, expiresAt: identity.expiresAt)
                } catch {
                    return .refused(ReplicaRefusal(error))
                }
                return .session(
                    try await intake.offer(
                        by: resolved, to: machine, mode: mode, ticket: ticket, reason: reason, source: source
                    ).id)
            case .requestControl(let id, let identity, let source):
                return .session(try await broker.requestControl(id, by: identity, source: source).id)
            case .end(let id, let identity, let source):
                return .session(try await broker.end(id, by: identity, source: source).id)
            case .forgetLogins(let ids):
                operators.forget(ids)
                return .done
            case .disconnect(let machine):
                await gateway.disconnectHere(machine)
                return .done
            case .chat(let id, let identity, let text, let source):
                return .chat(try await broker.chat(id, text: text, by: identity, source: source))
            case .screenTicket(let id, let identity, let source):
                let snapshot = try broker.session(id, for: identity)
                do throws(ScreenError) {
                    let issued = try screens.viewerTicket(for: snapshot, by: identity, source: source)
                    return .screenTicket(ticket: issued.ticket, expiresAt: issued.expiresAt)
                } catch {
                    return .refused(ReplicaRefusal(error))
                }
            }
        } catch {
            return .refused(ReplicaRefusal(error))
        }
    }

    // MARK: Helper actions

    /// Offers help on the replica that holds the machine's agent (see `OfferIntake.offer`).
    func offer(
        by identity: OperatorService.Identity,
        to machineName: String,
        mode: AccessMode,
        ticket: String?,
        reason: String?,
        source: String
    ) async throws(SessionError) -> SessionSnapshot {
        let name = machineName.lowercased()
        if !links.isOnline(name), let owner = try await connectedInstance(of: name), owner != bus.instance {
            let call = ReplicaCall.offer(
                identity: identity.passedOn, machine: name, mode: mode, ticket: ticket, reason: reason, source: source)
            return try await stored(bus.call(call, on: owner), for: identity)
        }
        return try await intake.offer(
            by: identity, to: machineName, mode: mode, ticket: ticket, reason: reason, source: source)
    }

    /// Opens an invitation on the replica that holds the machine's agent (see `InvitationDesk.open`).
    func openInvitation(
        _ signed: SignedInvitation, mode: AccessMode, ticket: String?, reason: String?,
        by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> InvitationDesk.Opening {
        let name = signed.invitation.machine.lowercased()
        guard !links.isOnline(name), let owner = try await connectedInstance(of: name), owner != bus.instance else {
            return try await desk.open(signed, mode: mode, ticket: ticket, reason: reason, by: identity, source: source)
        }
        let call = ReplicaCall.openInvitation(
            identity: identity.passedOn, invitation: signed, mode: mode, ticket: ticket, reason: reason,
            source: source)
        switch try await bus.call(call, on: owner) {
        case .opening(let session, let machine, let challenge, let offered):
            var opening = InvitationDesk.Opening(session: session, machine: machine, challenge: challenge, offered: nil)
            if let offered { opening.offered = try await snapshot(of: elsewhere(offered, for: identity)) }
            return opening
        case .refused(let refusal): throw .refusedElsewhere(refusal)
        case .session, .done, .chat, .screenTicket: throw .noSessionInAnswer
        }
    }

    /// The helper's password proof, on the replica that holds the machine's agent (see `InvitationDesk.prove`).
    func proveInvitation(
        _ proof: InvitationPassword.SealedProof, session: UUID, machine: String,
        by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> SessionSnapshot {
        let name = machine.lowercased()
        guard !links.isOnline(name), let owner = try await connectedInstance(of: name), owner != bus.instance else {
            return try await desk.prove(proof, session: session, by: identity, source: source)
        }
        let call = ReplicaCall.proveInvitation(
            identity: identity.passedOn, session: session, proof: proof, source: source)
        return try await stored(bus.call(call, on: owner), for: identity)
    }

    /// Asks the novice for control, on the replica running the session.
    func requestControl(
        _ id: UUID, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError)
        -> SessionSnapshot
    {
        try await act(
            on: id, for: identity,
            here: { [broker] () async throws(SessionError) in
                try await broker.requestControl(id, by: identity, source: source)
            }, there: .requestControl(session: id, identity: identity.passedOn, source: source))
    }

    /// Ends a session, on the replica running it.
    func end(
        _ id: UUID, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError)
        -> SessionSnapshot
    {
        try await act(
            on: id, for: identity,
            here: { [broker] () async throws(SessionError) in
                try await broker.end(id, by: identity, source: source)
            }, there: .end(session: id, identity: identity.passedOn, source: source))
    }

    /// A chat line from the session's helper, on the replica running the session.
    func chat(
        _ id: UUID, text: String, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> ChatMessage {
        if broker.runsHere(id) { return try await broker.chat(id, text: text, by: identity, source: source) }
        let running = try await elsewhere(id, for: identity)
        let call = ReplicaCall.chat(session: id, identity: identity.passedOn, text: text, source: source)
        return try await bus.call(call, on: running.instance).chatMessage()
    }

    /// A viewer ticket for the session's screen, for its helper. For a session another replica runs, that replica
    /// issues it: a viewer that presents it to any replica is carried there (`ScreenCarrier`), so the helper's
    /// browser or `ora connect` reach the screen through whichever replica a load balancer gives them.
    /// - Throws: `ScreenError` or `SessionError`, as `ScreenService.viewerTicket`, and `.sessionElsewhere` when the
    ///   replica running the session has not said where its relay port is reached.
    func screenTicket(
        _ id: UUID, by identity: OperatorService.Identity, screens: ScreenService, source: String
    ) async throws -> ScreenService.TicketDocument {
        if broker.runsHere(id) {
            return try screens.viewerTicket(for: broker.session(id, for: identity), by: identity, source: source)
        }
        let running = try await elsewhere(id, for: identity)
        let snapshot = try snapshot(of: running)
        guard snapshot.helperDN == identity.person.dn else { throw ScreenError.onlyTheHelperMaySeeTheScreen }
        guard !snapshot.hasEnded else { throw ScreenError.sessionEnded }
        let published: Bool
        do {
            // As a carrying replica will look it up: by the issuer the replica's tickets begin with.
            published = try await store.relay(ofInstanceBeginning: ScreenRelay.issuer(of: running.instance)) != nil
        } catch {
            throw databaseFailed(error, doing: "reading where the replicas' relay ports are")
        }
        guard published else {
            logger.warning(
                "a replica running a session has not said where its relay port is reached; set screen.replica_host",
                metadata: ["session.id": "\(id)", "replica": "\(running.instance)"])
            throw ScreenError.sessionElsewhere
        }
        let call = ReplicaCall.screenTicket(session: id, identity: identity.passedOn, source: source)
        switch try await bus.call(call, on: running.instance) {
        case .screenTicket(let ticket, let expires):
            return screens.document(ticket: ticket, expiresAt: expires)
        case .refused(let refusal): throw SessionError.refusedElsewhere(refusal)
        case .session, .done, .chat, .opening: throw SessionError.noSessionInAnswer
        }
    }

    /// Does `here` when the session runs on this replica, otherwise asks the replica running it to do `there`.
    private func act(
        on id: UUID,
        for identity: OperatorService.Identity,
        here: () async throws(SessionError) -> SessionSnapshot,
        there call: ReplicaCall
    ) async throws(SessionError) -> SessionSnapshot {
        if broker.runsHere(id) { return try await here() }
        let running = try await elsewhere(id, for: identity)
        return try await stored(bus.call(call, on: running.instance), for: identity)
    }

    /// The session another replica answered with, as that replica stored it (answers carry only its id: the whole
    /// state need not fit in a notification).
    private func stored(
        _ answer: ReplicaAnswer, for identity: OperatorService.Identity
    ) async throws(SessionError)
        -> SessionSnapshot
    {
        try await snapshot(of: elsewhere(answer.session(), for: identity))
    }

    // MARK: Reading

    /// The sessions `identity` may see, on every replica: those running and those ended in the last hour.
    func sessions(for identity: OperatorService.Identity) async throws(SessionError) -> [SessionSnapshot] {
        var sessions = broker.sessions(for: identity)
        let known = Set(sessions.map(\.id))
        let stored: [ReplicaStore.StoredSession]
        do {
            stored = try await store.sessions(notOn: bus.instance, changedSince: clock.now().addingTimeInterval(-3600))
        } catch {
            throw databaseFailed(error, doing: "reading sessions and connections")
        }
        for session in stored where !known.contains(session.id) {
            if let snapshot = Self.decode(session), identity.maySee(snapshot) { sessions.append(snapshot) }
        }
        return sessions.sorted { $0.offeredAt > $1.offeredAt }
    }

    /// One session, wherever it runs.
    func session(_ id: UUID, for identity: OperatorService.Identity) async throws(SessionError) -> SessionSnapshot {
        if broker.runsHere(id) { return try broker.session(id, for: identity) }
        return try await snapshot(of: elsewhere(id, for: identity))
    }

    /// The session's state now and at every change, and its chat lines as they come, until it ends, wherever it
    /// runs.
    func watch(
        _ id: UUID, for identity: OperatorService.Identity
    ) async throws(SessionError)
        -> AsyncStream<SessionEvent>
    {
        if broker.runsHere(id) { return try broker.watch(id, for: identity) }
        // Listen before reading, so that no change falls between the two.
        let changes = bus.changes(of: id)
        let first = try await snapshot(of: elsewhere(id, for: identity))
        let (stream, continuation) = AsyncStream<SessionEvent>.makeStream(bufferingPolicy: .bufferingNewest(64))
        continuation.yield(.state(first))
        guard !first.hasEnded else {
            continuation.finish()
            return stream
        }
        // It ends when this server stops, too: the session goes on where it runs, and a follower still reading
        // here would keep this server from stopping (its requests are waited for) for as long as the session lasts.
        let reader = Task { [store] in
            await cancelWhenGracefulShutdown {
                var last = first
                for await notice in changes {
                    if case .chat(let message) = notice {
                        continuation.yield(.chat(message))
                        continue
                    }
                    guard let stored = try? await store.session(id), let snapshot = Self.decode(stored) else {
                        continue
                    }
                    if snapshot != last {
                        continuation.yield(.state(snapshot))
                        last = snapshot
                    }
                    if snapshot.hasEnded || !stored.instanceAlive { break }
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in reader.cancel() }
        return stream
    }

    // MARK: Sessions of stopped replicas

    /// Ends, every few seconds, the sessions of replicas that stopped without ending them.
    func run() async throws {
        // The first look waits for the migrations the server runs as it starts.
        for await _ in Ticks.every(.seconds(5)) {
            await endOrphanedSessions()
        }
    }

    /// Records `session.ended` (`server_restart`) for each session whose replica stopped while it ran.
    func endOrphanedSessions() async {
        let ended: [UUID]
        do {
            ended = try await store.endOrphanedSessions { stored in
                guard var snapshot = Self.decode(stored) else { return nil }
                let event = AuditEvent(
                    .sessionEnded, time: self.clock.timestamp, actor: .system(ServerApplication.instanceName),
                    machine: snapshot.machine,
                    session: snapshot.id, policy: .init(version: snapshot.policyVersion, names: snapshot.policies),
                    outcome: .success,
                    details: [
                        "state": "ended", "reason": .string(SessionEndReason.serverRestart.rawValue),
                        "control_requests": .integer(Int64(snapshot.controlRequests)),
                        "last_state": .string(snapshot.state), "server_stopped": true,
                    ])
                snapshot.state = "ended"
                snapshot.endReason = .serverRestart
                snapshot.deadline = nil
                guard let encoded = try? Self.encode(snapshot) else { return nil }
                return (event, encoded)
            }
            try await store.pruneSessions(endedBefore: clock.now().addingTimeInterval(-7 * 86400))
        } catch {
            logger.warning(
                "could not end the sessions of stopped servers",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            return
        }
        for id in ended {
            logger.notice("ended a session of a stopped server", metadata: ["session.id": "\(id)"])
            await bus.announce(id)
        }
    }

    // MARK: Helpers

    private func connectedInstance(of machine: String) async throws(SessionError) -> UUID? {
        do {
            return try await store.connectedInstance(of: machine)
        } catch {
            throw databaseFailed(error, doing: "reading sessions and connections")
        }
    }

    /// The copy of a session another replica runs, if `identity` may see it.
    private func elsewhere(
        _ id: UUID, for identity: OperatorService.Identity
    ) async throws(SessionError)
        -> ReplicaStore.StoredSession
    {
        let stored: ReplicaStore.StoredSession?
        do {
            stored = try await store.session(id)
        } catch {
            throw databaseFailed(error, doing: "reading sessions and connections")
        }
        guard let stored, let snapshot = Self.decode(stored), identity.maySee(snapshot) else {
            throw .unknownSession(id)
        }
        return stored
    }

    private func snapshot(of stored: ReplicaStore.StoredSession) throws(SessionError) -> SessionSnapshot {
        guard let snapshot = Self.decode(stored) else {
            throw .unreadableStoredSession
        }
        return snapshot
    }

    static func encode(_ snapshot: SessionSnapshot) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(snapshot), as: UTF8.self)
    }

    private static func decode(_ stored: ReplicaStore.StoredSession) -> SessionSnapshot? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(SessionSnapshot.self, from: Data(stored.snapshot.utf8))
    }
}

extension SessionRouting {
    /// `.databaseUnavailable`, with the failure logged for the server's operators (the client is not told why).
    fileprivate func databaseFailed(_ error: any Error, doing action: String) -> SessionError {
        logDatabaseFailure(error, doing: action, logger: logger)
        return .databaseUnavailable
    }
}

extension OperatorService.Identity {
    /// The identity as passed to another replica: without the group list, which can be long; the receiver resolves
    /// groups itself when it needs them.
    var passedOn: OperatorService.Identity {
        var identity = self
        identity.groups = []
        return identity
    }

    /// Whether this operator may see `session`: their own; every one for administrators and auditors.
    func maySee(_ session: SessionSnapshot) -> Bool {
        session.helperDN == person.dn || !Set(roles).isDisjoint(with: [.administrator, .auditor])
    }
}
