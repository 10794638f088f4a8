public import Crypto
public import Foundation

/// A whole, validated set of policies: what administrators apply as one version.
public struct PolicySet: Sendable, Hashable {
    /// A source file of the set, kept verbatim.
    public struct File: Sendable, Hashable, Codable {
        /// The file's name relative to the policy directory.
        public var name: String
        /// Its text.
        public var content: String

        /// Creates a file.
        public init(name: String, content: String) {
            self.name = name
            self.content = content
        }
    }

    /// Every policy, in file order.
    public let policies: [Policy]
    /// Which groups make administrators and auditors.
    public let roles: RoleAssignments
    /// The files the set was read from.
    public let files: [File]
    /// Positions in `policies` by what their targets name, so a decision looks only at the policies about the
    /// machine, not at every policy.
    private let targetIndex: TargetIndex

    /// Creates a set.
    public init(policies: [Policy], roles: RoleAssignments = RoleAssignments(), files: [File] = []) {
        self.policies = policies
        self.roles = roles
        self.files = files
        self.targetIndex = TargetIndex(policies)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.policies == rhs.policies && lhs.roles == rhs.roles && lhs.files == rhs.files
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(policies)
        hasher.combine(roles)
        hasher.combine(files)
    }

    /// SHA-256 over the files (names and contents, sorted by name), hex-encoded: the version's identity.
    public var contentHash: String {
        var hash = SHA256()
        for file in files.sorted(by: { $0.name < $1.name }) {
            hash.update(data: Array(file.name.utf8) + [0])
            hash.update(data: Array(file.content.utf8) + [0])
        }
        return Hex.encode(hash.finalize())
    }

    /// Decides an offer.
    ///
    /// Default deny: no matching policy, no offer. Any matching deny policy in force wins. Otherwise the strongest
    /// access among matching allow policies whose schedule and ticket requirement are met decides; `control` includes
    /// `view`. The decision names the policies that decided it and, when denied, why.
    /// - Parameters:
    ///   - operatorGroups: the operator's groups, nested included.
    ///   - machine: the target machine's directory facts.
    ///   - mode: the access the offer asks for.
    ///   - ticket: the ticket or reason id the offer carries.
    ///   - date: when the offer is made.
    public func decide(
        operatorGroups: Set<DistinguishedName>,
        machine: MachineFacts,
        mode: AccessMode,
        ticket: String?,
        at date: Date
    ) -> Decision {
        // Work with positions, not copies of policies: a decision touches only a handful of them.
        var matching: [Int] = []
        var previous = -1
        for position in targetIndex.positions(for: machine) where position != previous {
            previous = position
            if policies[position].covers(operatorGroups: operatorGroups) { matching.append(position) }
        }
        guard !matching.isEmpty else { return Decision(denied: .noPolicyMatched) }

        var denials: [String] = []
        var outsideSchedule: [String] = []
        var ticketMissing: [Int] = []
        var sufficient: [Int] = []
        var weaker: [String] = []
        var strongest = mode
        for position in matching {
            let policy = policies[position]
            let inSchedule = policy.schedule?.contains(date) ?? true
            guard case .allow(let access) = policy.effect else {
                if inSchedule { denials.append(policy.name) }
                continue
            }
            guard inSchedule else {
                outsideSchedule.append(policy.name)
                continue
            }
            guard policy.accepts(ticket: ticket) else {
                ticketMissing.append(position)
                continue
            }
            if access >= mode {
                sufficient.append(position)
                strongest = max(strongest, access)
            } else {
                weaker.append(policy.name)
            }
        }
        if !denials.isEmpty {
            return Decision(denied: .deniedBy(denials))
        }
        if !sufficient.isEmpty {
            // Read fields through the positions; copying whole policies costs more than the decision itself.
            return Decision(
                allowed: mode,
                strongest: strongest,
                policies: sufficient.map { policies[$0].name },
                consentTimeout: sufficient.lazy.map { policies[$0].consentTimeout }.min()
                    ?? Policy.defaultConsentTimeout,
                maximumDuration: sufficient.lazy.map { policies[$0].maximumDuration }.min()
                    ?? Policy.defaultMaximumDuration)
        }
        if !weaker.isEmpty {
            return Decision(denied: .accessTooLow(allowed: .view, by: weaker))
        }
        if !ticketMissing.isEmpty {
            let names = ticketMissing.map { policies[$0].name }
            if ticket?.isEmpty ?? true {
                return Decision(denied: .ticketRequired(by: names))
            }
            return Decision(
                denied: .ticketDoesNotMatch(
                    by: names, patterns: ticketMissing.compactMap { policies[$0].ticketPattern }))
        }
        // Only deny policies outside their schedule matched: none applies now.
        guard !outsideSchedule.isEmpty else { return Decision(denied: .noPolicyMatched) }
        return Decision(denied: .outsideSchedule(of: outsideSchedule))
    }
}

/// Where policies are, by the machines, computer groups and subtrees their targets name.
private struct TargetIndex: Sendable {
    var any: [Int] = []
    var byMachine: [String: [Int]] = [:]
    var byGroup: [DistinguishedName: [Int]] = [:]
    var bySubtree: [DistinguishedName: [Int]] = [:]

    init(_ policies: [Policy]) {
        for (index, policy) in policies.enumerated() {
            let targets = policy.targets
            if targets.any { any.append(index) }
            for machine in targets.machines { byMachine[machine, default: []].append(index) }
            for group in targets.groups { byGroup[group, default: []].append(index) }
            for subtree in targets.organizationalUnits { bySubtree[subtree, default: []].append(index) }
        }
    }

    /// The positions of every policy whose targets include `machine`, sorted, possibly repeated.
    func positions(for machine: MachineFacts) -> [Int] {
        var positions = any
        if let found = byMachine[machine.lowercasedName] { positions += found }
        for group in machine.groups {
            if let found = byGroup[group] { positions += found }
        }
        for subtree in machine.subtrees {
            if let found = bySubtree[subtree] { positions += found }
        }
        positions.sort()
        return positions
    }
}
