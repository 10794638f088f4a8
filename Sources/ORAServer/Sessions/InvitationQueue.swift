import Foundation
import Logging
import ORACore
import ORAStore
import ServiceLifecycle
import Synchronization

/// The helpdesk's queue: the person at a machine sends an invitation (signed by the machine, for the helpdesk), it
/// appears at once to every helper whom policy allows to answer it, on every replica, and the first helper to take
/// it gets it — exactly one, decided by one statement in the database. Taking it only reserves it: opening it is
/// the same as opening a file (`InvitationDesk`), where the machine checks the password and the person is asked.
final class InvitationQueue: Service, Sendable {
    /// Who may answer an invitation, as the person at its machine sees them.
    struct Presence: Codable, Sendable, Equatable {
        /// Watching the queue now, and free.
        var online = 0
        /// Watching the queue now, and helping someone in a session.
        var busy = 0
        /// Logged in, but not watching the queue now.
        var away = 0
    }

    /// An invitation in the queue, with the file the machine signed.
    struct Item: Sendable {
        var entry: InvitationQueueStore.Entry
        var signed: SignedInvitation
    }

    private struct Watcher: Sendable {
        var groups: Set<DistinguishedName>
        var continuation: AsyncStream<Item>.Continuation
    }

    private let store: InvitationQueueStore
    private let intake: OfferIntake
    private let replicas: ReplicaStore
    private let audit: SessionAudit
    private let instance: UUID
    private let clock: ServerClock
    private let logger: Logger
    private let watchers = Mutex<[UUID: Watcher]>([:])
    /// The invitations that changed, as every replica announced them (`ReplicaBus` passes them here).
    private let changes: AsyncStream<UUID>
    /// Where `ReplicaBus` passes them.
    let changed: AsyncStream<UUID>.Continuation

    init(
        store: InvitationQueueStore, intake: OfferIntake, replicas: ReplicaStore, audit: SessionAudit, instance: UUID,
        clock: ServerClock, logger: Logger
    ) {
        self.store = store
        self.intake = intake
        self.replicas = replicas
        self.audit = audit
        self.instance = instance
        self.clock = clock
        self.logger = logger
        (changes, changed) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(4096))
    }

    // MARK: From the machine

    /// Puts `signed` in the queue (again: an invitation already there is left as it is) and says who may answer it.
    /// - Returns: whether it was new, and the helpers who may answer it now.
    /// - Throws: `SessionError.invitation` (not genuine, not the enrolled key, expired), `.wrongChannel`,
    ///   `.invalidRequest` (too long a lifetime), `.machine…`, `.directory`, `.auditUnavailable`,
    ///   `.databaseUnavailable`.
    func post(_ signed: SignedInvitation, source: String) async throws(SessionError) -> (new: Bool, Presence) {
        do throws(InvitationError) {
            try signed.verify()
        } catch {
            throw .invitation(error)
        }
        let invitation = signed.invitation
        guard invitation.channel == .helpdesk else { throw .wrongChannel(made: invitation.channel, used: .helpdesk) }
        let (machine, facts) = try await machineFacts(invitation.machine)
        guard machine.publicKey == invitation.machineKey else {
            throw .invitation(.notEnrolledKey(machine: invitation.machine))
        }
        let now = clock.now()
        guard !invitation.hasExpired(at: now), let created = invitation.creation, let expiry = invitation.expiry
        else { throw .invitation(.expired) }
        let terms = PolicySet.InvitationTerms(invitation)
        if let refusal = intake.policies.active.set.invitationLimits(for: facts).refusal(
            of: terms, machine: machine.name.uppercased())
        {
            throw .invitationNotAnswerable(refusal)
        }
        let (known, open): (Bool, Int)
        do {
            known = try await store.entry(invitation.id) != nil
            open = known ? 0 : try await store.openCount(of: machine.name)
        } catch {
            throw .databaseUnavailable
        }
        // A machine that asks over and over (or an agent gone wrong) does not fill the helpers' queue.
        guard known || open < Self.mostOpenPerMachine else {
            throw .tooManyQueued(machine: machine.name.uppercased(), open: open)
        }
        if !known {
            var details: [String: AuditValue] = [
                "invitation": .string(invitation.id.uuidString.lowercased()), "channel": .string("helpdesk"),
                "recipient": .string("helpdesk queue"), "asked_by": .string(invitation.askedBy.account),
                "expires_at": .string(invitation.expiresAt), "password": .bool(invitation.password != nil),
            ]
            if let message = invitation.message { details["message"] = .text(message) }
            try await audit.record(
                AuditEvent(
                    .invitationSent, time: clock.timestamp, actor: .machine(machine.name), machine: machine.name,
                    source: source, outcome: .success, details: details))
            let entry = InvitationQueueStore.Entry(
                id: invitation.id, machine: machine.name,
                invitation: String(decoding: signed.fileContent, as: UTF8.self),
                askedBy: invitation.askedBy.displayName, message: invitation.message, createdAt: created,
                expiresAt: expiry)
            do {
                _ = try await store.post(entry)
            } catch {
                throw .databaseUnavailable
            }
            await announce(invitation.id)
        }
        return (!known, try await presence(on: facts, terms: terms))
    }

    /// Takes the invitation `id` out of the queue, as its machine reported (`revoked` or `expired`).
    func withdraw(_ id: UUID, reason: String) async {
        do {
            if try await store.withdraw(id, reason: reason) { await announce(id) }
        } catch {
            logger.warning(
                "could not take an invitation out of the helpdesk's queue",
                metadata: ["invitation.id": "\(id)", "error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    /// Who may answer the requests of the machine that asks, now: for it to tell its person before they send one.
    /// - Throws: `SessionError.invitation(.notEnrolledKey)` when the question is not signed by the enrolled key of
    ///   the machine it names (or none of that name is enrolled), or not asked within a minute of this server's clock.
    func presence(asked question: PresenceQuestion) async throws(SessionError) -> Presence {
        let (machine, facts) = try await machineFacts(question.machine)
        guard let key = try? DevicePublicKey.parse(machine.publicKey), question.isValid(signedBy: key, at: clock.now())
        else { throw .invitation(.notEnrolledKey(machine: question.machine)) }
        return try await presence(on: facts)
    }

    /// The enrolled machine `name` and its facts; a machine that is not enrolled is refused as a key that is not
    /// the enrolled one, so that a stranger learns nothing about which machines are.
    private func machineFacts(_ name: String) async throws(SessionError) -> (MachineStore.Machine, MachineFacts) {
        do throws(SessionError) {
            return try await intake.facts(of: name)
        } catch .machine(let error) where error.kind == .notFound {
            throw .invitation(.notEnrolledKey(machine: name))
        }
    }

    /// The helpers who may answer an invitation (with `terms`, or any) from a machine with `facts`: each counted
    /// once, by what they do now.
    func presence(
        on facts: MachineFacts, terms: PolicySet.InvitationTerms? = nil
    ) async throws(SessionError) -> Presence {
        let watchers: [InvitationQueueStore.Watcher]
        do {
            watchers = try await store.watchers()
        } catch {
            throw .databaseUnavailable
        }
        // Each helper once: watching beats away, and busy is watching while in a session.
        var states: [String: Int] = [:]
        for watcher in watchers {
            let groups = Set(watcher.groups.compactMap { try? DistinguishedName($0) })
            guard mayAnswer(groups, on: facts, terms: terms) else { continue }
            let rank = watcher.watching ? (watcher.busy ? 1 : 2) : 0
            states[watcher.operatorDN.lowercased()] = max(states[watcher.operatorDN.lowercased()] ?? 0, rank)
        }
        var presence = Presence()
        for rank in states.values {
            switch rank {
            case 2: presence.online += 1
            case 1: presence.busy += 1
            default: presence.away += 1
            }
        }
        return presence
    }

    // MARK: For the helpers

    /// The open invitations `identity` may answer, oldest first.
    func open(for identity: OperatorService.Identity) async throws(SessionError) -> [Item] {
        let entries: [InvitationQueueStore.Entry]
        do {
            entries = try await store.open()
        } catch {
            throw .databaseUnavailable
        }
        var facts: [String: MachineFacts] = [:]
        var items: [Item] = []
        for entry in entries {
            guard let item = Self.item(entry) else { continue }
            if facts[entry.machine] == nil { facts[entry.machine] = try? await intake.facts(of: entry.machine).1 }
            guard let machine = facts[entry.machine],
                mayAnswer(Set(identity.groups), on: machine, terms: .init(item.signed.invitation))
            else { continue }
            items.append(item)
        }
        return items
    }

    /// The open invitations `identity` may answer, then each change of one (posted, taken, withdrawn) as it
    /// happens on any replica, until the stream is dropped. While it lasts, the helper counts as watching.
    func watch(
        for identity: OperatorService.Identity, session: UUID
    ) async throws(SessionError) -> AsyncStream<Item> {
        let id = UUID()
        do {
            try await store.watch(
                id, instance: instance, operatorDN: identity.person.dn, session: session,
                groups: identity.groups.map(\.description))
        } catch {
            throw .databaseUnavailable
        }
        let (stream, continuation) = AsyncStream<Item>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        // Registered before the list is read, so that nothing posted in between is missed (it may come twice).
        watchers.withLock { $0[id] = Watcher(groups: Set(identity.groups), continuation: continuation) }
        // It ends when this server stops, too: a helper still watching here would keep the server from stopping (its
        // requests are waited for). Their client watches again through another replica, or this one restarted.
        let ender = Task {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(365 * 86_400)) }
            continuation.finish()
        }
        continuation.onTermination = { [weak self] _ in
            ender.cancel()
            guard let self else { return }
            watchers.withLock { $0[id] = nil }
            Task { try? await self.store.unwatch(id) }
        }
        do throws(SessionError) {
            for item in try await open(for: identity) { continuation.yield(item) }
        } catch {
            continuation.finish()
            throw error
        }
        return stream
    }

    /// Takes the invitation `id` for `identity`: the first helper to ask gets it; asking again gets it again.
    /// - Throws: `SessionError.notInQueue` (none, or not one this helper may answer), `.invitationTaken` (someone was
    ///   first), `.invitationWithdrawn`, `.auditUnavailable`, `.databaseUnavailable`.
    func take(_ id: UUID, by identity: OperatorService.Identity, source: String) async throws(SessionError) -> Item {
        let found: InvitationQueueStore.Entry?
        do {
            found = try await store.entry(id)
        } catch {
            throw .databaseUnavailable
        }
        guard let found, let item = Self.item(found) else { throw .notInQueue(id) }
        let (_, facts) = try await intake.facts(of: found.machine)
        guard mayAnswer(Set(identity.groups), on: facts, terms: .init(item.signed.invitation)) else {
            throw .notInQueue(id)
        }
        let invitation = item.signed.invitation
        let event = AuditEvent(
            .invitationClaimed, time: clock.timestamp,
            actor: .operator(dn: identity.person.dn, account: identity.person.account), machine: found.machine,
            source: source, outcome: .success,
            details: [
                "invitation": .string(id.uuidString.lowercased()), "channel": .string("helpdesk"),
                "asked_by": .string(invitation.askedBy.account),
                "waited_ms": .integer(Int64(max(0, clock.now().timeIntervalSince(found.postedAt)) * 1000)),
            ])
        let result: (taken: Bool, entry: InvitationQueueStore.Entry?)
        do {
            result = try await store.take(
                id, by: identity.person.dn, name: identity.person.displayName, recording: event)
        } catch {
            audit.metrics.auditRefused()
            throw .auditUnavailable
        }
        if result.taken { audit.metrics.recorded(event) }
        guard let entry = result.entry else { throw .notInQueue(id) }
        if result.taken {
            await announce(id)
            return Item(entry: entry, signed: item.signed)
        }
        // Not taken now: this helper's already (taking again gets it again), someone else's, withdrawn, or expired.
        try Self.checkTaken(entry, by: identity, whenOpen: .invitationWithdrawn(reason: "expired"))
        return Item(entry: entry, signed: item.signed)
    }

    /// Refuses to open a helpdesk invitation that `identity` has not taken from the queue: only its taker opens it.
    func checkTaken(_ signed: SignedInvitation, by identity: OperatorService.Identity) async throws(SessionError) {
        let invitation = signed.invitation
        guard invitation.channel == .helpdesk else { return }
        let entry: InvitationQueueStore.Entry?
        do {
            entry = try await store.entry(invitation.id)
        } catch {
            throw .databaseUnavailable
        }
        guard let entry else { throw .notInQueue(invitation.id) }
        try Self.checkTaken(
            entry, by: identity,
            whenOpen: .invalidRequest("take the invitation from the helpdesk's queue first (ora invitation take)"))
    }

    /// Returns when `entry` is taken by `identity`; refuses when another helper took it or it was withdrawn, and
    /// with `whenOpen` when nobody has taken it.
    private static func checkTaken(
        _ entry: InvitationQueueStore.Entry, by identity: OperatorService.Identity, whenOpen: SessionError
    ) throws(SessionError) {
        switch entry.state {
        case "taken" where entry.takenByDN?.lowercased() == identity.person.dn.lowercased(): return
        case "taken":
            throw .invitationTaken(by: entry.takenByName ?? "another helper", at: entry.takenAt ?? entry.postedAt)
        case "withdrawn": throw .invitationWithdrawn(reason: entry.withdrawnReason ?? "revoked")
        default: throw whenOpen
        }
    }

    // MARK: Passing changes on

    /// Reads each changed invitation once and passes it to this replica's watchers who may answer it, until
    /// shutdown.
    func run() async throws {
        await withGracefulShutdownHandler {
            var facts: [String: (MachineFacts, Date)] = [:]
            for await id in changes {
                guard let entry = try? await store.entry(id), let item = Self.item(entry) else { continue }
                let now = clock.now()
                // A machine's facts are read once for the changes that come close together (as many helpers at once).
                if facts[entry.machine].map({ now.timeIntervalSince($0.1) > 5 }) ?? true {
                    guard let machine = try? await intake.facts(of: entry.machine).1 else { continue }
                    facts[entry.machine] = (machine, now)
                }
                guard let machine = facts[entry.machine]?.0 else { continue }
                let recipients = watchers.withLock { Array($0.values) }
                let terms = PolicySet.InvitationTerms(item.signed.invitation)
                for watcher in recipients where mayAnswer(watcher.groups, on: machine, terms: terms) {
                    watcher.continuation.yield(item)
                }
            }
        } onGracefulShutdown: {
            self.changed.finish()
            let all = self.watchers.withLock { Array($0.values) }
            for watcher in all { watcher.continuation.finish() }
        }
    }

    /// Tells every replica, this one included, that the invitation `id` changed.
    private func announce(_ id: UUID) async {
        do {
            try await replicas.notify(ReplicaStore.sessionsChannel, ReplicaBus.queuePrefix + id.uuidString.lowercased())
        } catch {
            logger.warning(
                "could not announce a change of the helpdesk's queue",
                metadata: ["invitation.id": "\(id)", "error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    // MARK: Rules

    /// The most requests one machine may have waiting in the queue at once.
    static let mostOpenPerMachine = 5

    /// Whether helpers with `groups` may answer an invitation with `terms` of a machine with `facts`: policy allows
    /// them at least to view it now, or would with a ticket. Without terms (before there is an invitation), whether
    /// they answer any.
    private func mayAnswer(
        _ groups: Set<DistinguishedName>, on facts: MachineFacts, terms: PolicySet.InvitationTerms? = nil
    ) -> Bool {
        let decision = intake.policies.active.set.decide(
            operatorGroups: groups, machine: facts, mode: .view, ticket: nil, at: clock.now(),
            invitation: terms ?? PolicySet.InvitationTerms(lifetime: .seconds(60), hasPassword: true))
        switch decision.denial {
        case nil: return decision.allowed != nil
        case .ticketRequired, .ticketDoesNotMatch: return true
        default: return false
        }
    }

    private static func item(_ entry: InvitationQueueStore.Entry) -> Item? {
        guard let signed = try? SignedInvitation(fileContent: Data(entry.invitation.utf8)) else { return nil }
        return Item(entry: entry, signed: signed)
    }
}
