import Foundation
import Logging
public import ORACore
import ORADirectory
public import ORAStore
public import ServiceLifecycle

/// Enrolled machines as the directory describes them (the OUs and computer groups they lie in), kept with the
/// machines in the database, so that helpers search thousands of machines by name, OU and group, and see what they
/// may do on each, without a directory look-up per machine. The facts are looked up again once they are older than
/// `refreshInterval` (a few at a time, by whichever replica gets to them first); an offer never relies on them, it
/// asks the directory itself.
public final class MachineDirectory: Service {
    /// A page of machines as a helper sees them.
    public struct Page: Sendable {
        /// The machines, by name.
        public var machines: [HelperMachine]
        /// The name to pass as `after` for the next page; `nil` on the last one.
        public var next: String?
        /// How many machines match the search (before `accessAtLeast` is applied).
        public var matched: Int
    }

    /// An enrolled machine, whether it is online, and what one helper may do there now.
    public struct HelperMachine: Sendable {
        /// The machine as listed.
        public var machine: MachineStore.ListedMachine
        /// The strongest access this helper may ask for; `nil` for none.
        public var access: AccessMode?
        /// Why, as the policy says it, or why nothing could be decided.
        public var explanation: String
    }

    /// The most machines one page holds.
    public static let largestPage = 500
    /// How many machines a search with an access condition reads at a time.
    static let machinesPerRead = 200
    /// How many machines one look-up round takes at most; rounds follow each other while machines are due.
    static let lookupsPerRound = 200

    private let store: MachineStore
    private let directory: DirectoryClient
    private let policies: PolicyService
    private let refreshInterval: Duration
    private let clock: ServerClock
    private let logger: Logger

    /// Creates the register.
    init(
        store: MachineStore, directory: DirectoryClient, policies: PolicyService, refreshInterval: Duration,
        clock: ServerClock, logger: Logger
    ) {
        self.store = store
        self.directory = directory
        self.policies = policies
        self.refreshInterval = refreshInterval
        self.clock = clock
        self.logger = logger
    }

    /// The machines matching `search` after the name `after`, up to `limit`, with what the helper with `groups` may
    /// do on each by the active policy. With `accessAtLeast`, only the machines where the helper may do at least
    /// that (`control` includes `view`); `matched` still counts them all.
    /// - Throws: `AgentError.databaseUnavailable`.
    public func search(
        _ search: MachineStore.MachineSearch, accessAtLeast: AccessMode? = nil, after: String?, limit: Int,
        for groups: Set<DistinguishedName>
    ) async throws(AgentError) -> Page {
        let now = clock.now()
        var found: [HelperMachine] = []
        var cursor = after
        var exhausted = false
        // Machines never looked up are asked of the directory on the way, a page's worth at most.
        var lookups = limit
        let matched: Int
        do {
            matched = try await store.countMachines(matching: search)
            // Without an access condition one read answers; with one, reads go on until the page is full.
            while found.count <= limit, !exhausted {
                let batch = accessAtLeast == nil ? limit + 1 : max(limit + 1, Self.machinesPerRead)
                let listed = try await store.machines(matching: search, after: cursor, limit: batch)
                exhausted = listed.count < batch
                cursor = listed.last?.name
                for machine in try await withFactsLookedUp(listed, at: now, atMost: &lookups) {
                    let decided = decide(machine, for: groups, at: now)
                    guard let least = accessAtLeast else {
                        found.append(decided)
                        continue
                    }
                    if let access = decided.access, access == .control || least == .view { found.append(decided) }
                }
            }
        } catch {
            logDatabaseFailure(error, doing: "searching machines", logger: logger)
            throw .databaseUnavailable
        }
        let page = Array(found.prefix(limit))
        return Page(machines: page, next: found.count > limit ? page.last?.machine.name : nil, matched: matched)
    }

    /// The OUs and containers, and the computer groups, that enrolled machines lie in, each with how many.
    /// - Throws: `AgentError.databaseUnavailable`.
    public func scopes() async throws(AgentError) -> (containers: [MachineStore.Scope], groups: [MachineStore.Scope]) {
        do {
            return try await store.scopes()
        } catch {
            logDatabaseFailure(error, doing: "listing the OUs and groups of machines", logger: logger)
            throw .databaseUnavailable
        }
    }

    /// Looks machines up again, a round at a time, until graceful shutdown.
    public func run() async throws {
        for await _ in Ticks.every(.seconds(10)) {
            // Rounds follow each other while machines are due, so that thousands enrolled at once are looked up
            // within minutes, not one round per tick.
            while await lookUpDueMachines() == Self.lookupsPerRound, !Task.isCancelled {}
        }
    }

    /// Looks up the machines whose facts are due and stores what the directory says.
    /// - Returns: how many were taken.
    @discardableResult
    func lookUpDueMachines() async -> Int {
        let now = clock.now()
        let names: [String]
        do {
            names = try await store.claimDirectoryChecks(
                checkedBefore: now.addingTimeInterval(-refreshInterval.timeInterval), limit: Self.lookupsPerRound,
                at: now)
        } catch {
            logDatabaseFailure(error, doing: "finding machines to look up in the directory", logger: logger)
            return 0
        }
        for name in names {
            do {
                try await store.recordDirectoryFacts(
                    of: name, try await directory.computer(named: name), at: clock.now())
            } catch let error as DirectoryError {
                // The claim lapses; the machine is taken again in a later round.
                logger.warning(
                    "could not look machines up in the directory; keeping what is stored",
                    metadata: ["error": "\(error.message)"])
                return 0
            } catch {
                logDatabaseFailure(error, doing: "storing a machine's directory facts", logger: logger)
                return 0
            }
        }
        return names.count
    }

    /// `machines`, with the facts of those never looked up asked of the directory now (a machine enrolled before
    /// facts were kept, or whose facts could not be stored), `budget` of them at most. When the directory cannot
    /// answer they stay unknown, and no more are asked for: one timeout is enough to wait.
    private func withFactsLookedUp(
        _ machines: [MachineStore.ListedMachine], at now: Date, atMost budget: inout Int
    ) async throws -> [MachineStore.ListedMachine] {
        var result = machines
        for index in result.indices where result[index].directory == nil && result[index].revokedAt == nil {
            guard budget > 0 else { break }
            budget -= 1
            let computer: Computer?
            do {
                computer = try await directory.computer(named: result[index].name)
            } catch {
                budget = 0
                break
            }
            result[index].directory = MachineStore.DirectoryFacts(computer: computer, checkedAt: now)
            try await store.recordDirectoryFacts(of: result[index].name, computer, at: now)
        }
        return result
    }

    private func decide(
        _ machine: MachineStore.ListedMachine, for groups: Set<DistinguishedName>, at now: Date
    ) -> HelperMachine {
        if machine.revokedAt != nil {
            return HelperMachine(machine: machine, access: nil, explanation: "the machine's enrollment is revoked")
        }
        guard let facts = machine.directory else {
            return HelperMachine(
                machine: machine, access: nil,
                explanation: "not decided: the directory could not be asked about this machine yet")
        }
        guard let computer = facts.computer else {
            return HelperMachine(
                machine: machine, access: nil, explanation: "not a computer object in the directory when last looked up"
            )
        }
        let (access, explanation) = policies.strongestOffer(groups: groups, computer: computer, at: now)
        return HelperMachine(machine: machine, access: access, explanation: explanation)
    }
}
