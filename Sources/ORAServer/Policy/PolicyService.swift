public import Foundation
public import Logging
public import ORACore
public import ORADirectory
public import ORAStore
public import ServiceLifecycle
import Synchronization

/// Holds the active policy version of this server and switches to a new one as soon as any server activates it:
/// it listens on the `ora_policy` channel and reloads on every notification (and after reconnecting, in case one
/// was missed).
public final class PolicyService: Service, Sendable {
    /// The policy this server decides with.
    public struct Active: Sendable {
        /// The activation, or `nil` when no policy was ever applied (then everything is denied).
        public var activation: PolicyStore.Activation?
        /// The parsed set.
        public var set: PolicySet
    }

    private let store: PolicyStore
    private let clock: ServerClock
    private let directory: DirectoryClient
    private let machines: MachineStore?
    private let logger: Logger
    private let state = Mutex(Active(activation: nil, set: PolicySet(policies: [])))
    private let watchers = Mutex<[ObjectIdentifier: Wakeup]>([:])

    /// Creates the service.
    /// - Parameters:
    ///   - store: where versions are kept.
    ///   - directory: resolves operators and machines for explanations.
    ///   - machines: the enrolled machines, whose stored directory facts say what a change would do to them.
    ///   - logger: where version changes are logged.
    public init(
        store: PolicyStore, directory: DirectoryClient, machines: MachineStore? = nil, clock: ServerClock,
        logger: Logger
    ) {
        self.clock = clock
        self.store = store
        self.directory = directory
        self.machines = machines
        self.logger = logger
    }

    /// What making `set` active would change now for the groups its changed policies name, on the enrolled machines
    /// (not revoked) as their directory facts were last looked up.
    /// - Throws: `PolicyError.databaseUnavailable`.
    public func impact(of set: PolicySet) async throws(PolicyError) -> PolicyImpact {
        var facts: [MachineFacts] = []
        if let machines {
            var after: String?
            do {
                while true {
                    let page = try await machines.machines(matching: .init(), after: after, limit: 1_000)
                    facts += page.compactMap { $0.directory?.computer.map(MachineFacts.init) }
                    guard page.count == 1_000, let last = page.last else { break }
                    after = last.name
                }
            } catch {
                throw databaseUnavailable(error)
            }
        }
        let current = active
        return PolicyImpact(
            from: current.activation == nil ? nil : current.set, to: set, on: facts, at: clock.now())
    }

    /// The active policy.
    public var active: Active { state.withLock { $0 } }

    /// Signals `wakeup` whenever another version becomes active.
    func signalActivations(to wakeup: Wakeup) {
        watchers.withLock { $0[ObjectIdentifier(wakeup)] = wakeup }
    }

    /// Reads the active version from the database and switches to it.
    public func reload() async throws {
        guard let (activation, files) = try await store.active() else {
            state.withLock { $0 = Active(activation: nil, set: PolicySet(policies: [])) }
            for watcher in watchers.withLock({ Array($0.values) }) { watcher.signal() }
            return
        }
        // Reloads can overlap (a notification and the applying request); never go back to an older activation.
        let isCurrentOrOlder = state.withLock { current in
            current.activation.map { activation.activatedAt <= $0.activatedAt } ?? false
        }
        if isCurrentOrOlder { return }
        let set: PolicySet
        do {
            set = try PolicyParser.parse(files)
        } catch {
            // Stored sets were validated when applied; a set this server cannot read (from a newer ora) is not used.
            logger.error(
                "the active policy version cannot be read by this server; keeping the previous one",
                metadata: ["policy.version": "\(activation.version)", "error": "\(error.description)"])
            return
        }
        let installed = state.withLock { current in
            if let existing = current.activation, existing.activatedAt >= activation.activatedAt { return false }
            current = Active(activation: activation, set: set)
            return true
        }
        guard installed else { return }
        for watcher in watchers.withLock({ Array($0.values) }) { watcher.signal() }
        logger.notice(
            "policy version active",
            metadata: [
                "policy.version": "\(activation.version)", "policy.hash": "\(activation.contentHash)",
                "policy.count": "\(set.policies.count)",
            ])
    }

    /// An entry that a policy set names and the directory does not have.
    public struct UnknownEntry: Sendable, Hashable {
        /// Where it is named.
        public var reference: DirectoryReference
        /// The names the directory has that were probably meant, closest first.
        public var suggestions: [String]

        /// The mistake in one line, as `check` prints the others: `helpdesk.yaml:5:16: policies[0].helpers.groups[0]:
        /// cn=Helpdesk Tier2,… is not in the directory; did you mean "cn=Helpdesk Tier 2,…"?`
        public var description: String {
            let place = reference.location.map { "\($0): " } ?? ""
            let what =
                switch reference.kind {
                case .operatorGroup: "group"
                case .organizationalUnit: "OU"
                case .computerGroup: "computer group"
                }
            let hint =
                suggestions.isEmpty
                ? "" : "; did you mean " + suggestions.map { "\"\($0)\"" }.joined(separator: " or ") + "?"
            return "\(place)\(reference.keyPath): the \(what) \(reference.dn) is not in the directory\(hint)"
        }
    }

    /// Parses `files` and looks up every entry they name in the directory.
    /// - Returns: the set, and the entries the directory does not have, in file order.
    /// - Throws: `PolicyError.invalidPolicySet` with every mistake; `.directory` when it cannot answer.
    public func check(files: [PolicySet.File]) async throws(PolicyError) -> (PolicySet, [UnknownEntry]) {
        let set: PolicySet
        do {
            set = try PolicyParser.parse(files)
        } catch {
            throw .invalidPolicySet(mistakes: error.errors.map(\.description))
        }
        return (set, try await unknownEntries(of: set))
    }

    /// The entries `set` names that the directory does not have, each once per place it is named.
    private func unknownEntries(of set: PolicySet) async throws(PolicyError) -> [UnknownEntry] {
        var answers: [DistinguishedName: DirectoryClient.EntryCheck] = [:]
        var unknown: [UnknownEntry] = []
        for reference in set.references {
            let answer: DirectoryClient.EntryCheck
            if let known = answers[reference.dn] {
                answer = known
            } else {
                do {
                    answer = try await directory.check(reference.dn)
                } catch {
                    throw .directory(error)
                }
                answers[reference.dn] = answer
            }
            if case .missing(let suggestions) = answer {
                unknown.append(UnknownEntry(reference: reference, suggestions: suggestions))
            }
        }
        return unknown
    }

    /// Validates `files` as a set and activates it, unless the active version is no longer `base`. The change and
    /// its `policy.applied` audit event (with the content hash and what changed) are stored together.
    /// - Parameters:
    ///   - author: the administrator.
    ///   - source: where the request came from.
    ///   - allowUnknown: apply even if the directory lacks entries the set names (or cannot be asked).
    /// - Throws: `PolicyError.invalidPolicySet` listing every mistake, `.unknownEntries` listing each entry the
    ///   directory does not have, `.directory`, `.conflict`, `.databaseUnavailable`.
    public func apply(
        files: [PolicySet.File],
        author: Operator,
        source: String,
        comment: String?,
        base: PolicyStore.Base,
        allowUnknown: Bool = false
    ) async throws(PolicyError) -> PolicyStore.ApplyOutcome {
        let set: PolicySet
        do {
            set = try PolicyParser.parse(files)
        } catch {
            throw .invalidPolicySet(mistakes: error.errors.map(\.description))
        }
        // A group or OU the directory does not have would lock its people out, or let nobody in, unnoticed.
        if !allowUnknown {
            let unknown = try await unknownEntries(of: set)
            guard unknown.isEmpty else { throw .unknownEntries(mistakes: unknown.map(\.description)) }
        }
        let outcome: PolicyStore.ApplyOutcome
        let eventID = UUID()
        let current = active
        let diff = PolicyDiff(from: current.activation == nil ? nil : current.set, to: set)
        do {
            outcome = try await store.apply(set, author: author.dn, comment: comment, base: base) {
                version, previous in
                AuditEvent(
                    .policyApplied, id: eventID, time: clock.timestamp,
                    actor: .operator(dn: author.dn, account: author.account),
                    source: source, policy: .init(version: version), outcome: .success,
                    details: [
                        "version": .integer(version),
                        "previous_version": previous.map { .integer($0) } ?? .null,
                        "content_hash": .string(set.contentHash),
                        "comment": .text(comment),
                        "files": .array(set.files.map { .string($0.name) }),
                        "added": .array(diff.added.map { .string($0) }),
                        "changed": .array(diff.changed.map { .string($0) }),
                        "removed": .array(diff.removed.map { .string($0) }),
                        "roles_changed": .bool(diff.rolesChanged),
                    ])
            }
        } catch let conflict as PolicyStore.ConflictError {
            throw .conflict(conflict.description)
        } catch {
            throw databaseUnavailable(error)
        }
        await reloadAfterChange()
        return outcome
    }

    /// Makes an earlier version active again; the rollback and its `policy.rolled_back` event are stored together.
    /// - Throws: `PolicyError.unknownVersion`, `.databaseUnavailable`.
    public func rollback(
        to version: Int64,
        actor: Operator,
        source: String,
        comment: String?
    ) async throws(PolicyError) -> PolicyStore.RollbackOutcome {
        let eventID = UUID()
        let outcome: PolicyStore.RollbackOutcome
        do {
            outcome = try await store.rollback(to: version, actor: actor.dn, comment: comment) { hash, previous in
                AuditEvent(
                    .policyRolledBack, id: eventID, time: clock.timestamp,
                    actor: .operator(dn: actor.dn, account: actor.account),
                    source: source, policy: .init(version: version), outcome: .success,
                    details: [
                        "version": .integer(version),
                        "previous_version": previous.map { .integer($0) } ?? .null,
                        "content_hash": .string(hash),
                        "comment": .text(comment),
                    ])
            }
        } catch let conflict as PolicyStore.ConflictError {
            throw .unknownVersion(conflict.description)
        } catch {
            throw databaseUnavailable(error)
        }
        if outcome == .rolledBack { await reloadAfterChange() }
        return outcome
    }

    /// Every activation, newest first.
    public func history() async throws(PolicyError) -> [PolicyStore.Activation] {
        do {
            return try await store.history()
        } catch {
            throw databaseUnavailable(error)
        }
    }

    /// What changed from stored version `old` to stored version `new`: policies added and removed, and field by field
    /// in those changed.
    /// - Throws: `PolicyError.unknownVersion` naming a version that was never stored, `.databaseUnavailable`.
    public func difference(
        from old: Int64, to new: Int64
    ) async throws(PolicyError) -> (diff: PolicyDiff, fields: [(policy: String, changes: [PolicyFieldChange])]) {
        func set(_ version: Int64) async throws(PolicyError) -> PolicySet {
            let files: [PolicySet.File]?
            do {
                files = try await store.files(ofVersion: version)
            } catch {
                throw databaseUnavailable(error)
            }
            guard let files else { throw .unknownVersion("no policy version \(version) was ever stored") }
            do {
                return try PolicyParser.parse(files)
            } catch {
                // A stored version was valid when it was applied; one that no longer parses cannot be compared.
                throw .invalidPolicySet(mistakes: error.errors.map(\.description))
            }
        }
        let before = try await set(old)
        let after = try await set(new)
        return (PolicyDiff(from: before, to: after), PolicyDiff.fieldChanges(from: before, to: after))
    }

    /// What the active version decides for the operator named `user` offering help to the machine `machine` (or, with
    /// `invitation`, answering an invitation from it), with groups and computer facts resolved from the directory now.
    /// - Returns: the decision and the version that made it.
    /// - Throws: `PolicyError.unknownOperator` or `.unknownMachine`; `.directory` when it cannot answer.
    public func explain(
        user: String,
        machine: String,
        mode: AccessMode,
        ticket: String?,
        at date: Date,
        invitation: PolicySet.InvitationTerms? = nil
    ) async throws(PolicyError) -> (decision: Decision, version: Int64?) {
        let found: (Operator?, Computer?)
        do {
            found.0 = try await directory.person(named: user)
            found.1 = found.0 == nil ? nil : try await directory.computer(named: machine)
        } catch {
            throw .directory(error)
        }
        guard let person = found.0 else { throw .unknownOperator(user) }
        guard let computer = found.1 else { throw .unknownMachine(machine) }
        guard let dn = try? DistinguishedName(person.dn) else {
            throw .directory(.failed(reason: "the directory returned an invalid DN for \(user)"))
        }
        let groups: Set<DistinguishedName>
        do {
            groups = try await directory.groups(of: dn)
        } catch {
            throw .directory(error)
        }
        let active = self.active
        let decision = active.set.decide(
            operatorGroups: groups, machine: MachineFacts(computer), mode: mode, ticket: ticket, at: date,
            invitation: invitation)
        return (decision, active.activation?.version)
    }

    /// The strongest access an operator with `groups` may offer on `computer` at `date`, and the sentence that says
    /// why. A ticket requirement does not count against it: the operator brings the ticket with the offer.
    /// - Returns: `nil` access when nothing may be offered; the explanation says why.
    public func strongestOffer(
        groups: Set<DistinguishedName>, computer: Computer, at date: Date
    ) -> (access: AccessMode?, explanation: String) {
        let set = active.set
        let facts = MachineFacts(computer)
        var explanation = ""
        for mode in [AccessMode.control, .view] {
            let decision = set.decide(operatorGroups: groups, machine: facts, mode: mode, ticket: nil, at: date)
            if decision.isAllowed { return (mode, decision.explanation) }
            if case .ticketRequired = decision.denial {
                return (
                    mode,
                    "allowed (\(mode.rawValue)) with a ticket: "
                        + decision.explanation.replacingOccurrences(of: "denied: ", with: "")
                )
            }
            explanation = decision.explanation
        }
        return (nil, explanation)
    }

    /// Switches at once after a change made through this server; the notification follows for every other one.
    private func reloadAfterChange() async {
        do {
            try await reload()
        } catch {
            logger.warning(
                "could not reload the policy after a change; waiting for the notification",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    private func databaseUnavailable(_ error: any Error) -> PolicyError {
        logDatabaseFailure(error, doing: "storing or reading policy versions", logger: logger)
        return .databaseUnavailable
    }

    /// Listens for activations until shutdown.
    public func run() async throws {
        await keepRunning(logging: "listening for policy changes failed; retrying", logger: logger) {
            try await self.store.withActivations { activations in
                // Anything activated while this server was not listening.
                try await self.reload()
                for try await _ in activations {
                    try await self.reload()
                }
            }
        }
    }

}
