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
        return hash.finalize().map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
        }.joined()
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
        var matching: [Policy] = []
        var previous = -1
        for position in targetIndex.positions(for: machine) where position != previous {
            previous = position
            let policy = policies[position]
            if policy.covers(operatorGroups: operatorGroups) { matching.append(policy) }
        }
        guard !matching.isEmpty else { return Decision(denied: .noPolicyMatched) }

        let denials = matching.filter { $0.effect == .deny && ($0.schedule?.contains(date) ?? true) }
        if !denials.isEmpty {
            return Decision(denied: .deniedBy(denials.map(\.name)), policies: denials.map(\.name))
        }

        var outsideSchedule: [String] = []
        var ticketMissing: [Policy] = []
        var allowing: [(policy: Policy, access: AccessMode)] = []
        for policy in matching {
            guard case .allow(let access) = policy.effect else { continue }
            if let schedule = policy.schedule, !schedule.contains(date) {
                outsideSchedule.append(policy.name)
                continue
            }
            guard policy.accepts(ticket: ticket) else {
                ticketMissing.append(policy)
                continue
            }
            allowing.append((policy, access))
        }

        let sufficient = allowing.filter { $0.access >= mode }
        if !sufficient.isEmpty {
            let deciding = sufficient.map(\.policy)
            return Decision(
                allowed: mode,
                strongest: sufficient.map(\.access).max() ?? mode,
                policies: deciding.map(\.name),
                consentTimeout: deciding.map(\.consentTimeout).min() ?? Policy.defaultConsentTimeout,
                maximumDuration: deciding.map(\.maximumDuration).min() ?? Policy.defaultMaximumDuration)
        }
        if !allowing.isEmpty {
            return Decision(denied: .accessTooLow(allowed: .view, by: allowing.map(\.policy.name)))
        }
        if !ticketMissing.isEmpty {
            return Decision(
                denied: ticket?.isEmpty ?? true
                    ? .ticketRequired(by: ticketMissing.map(\.name))
                    : .ticketDoesNotMatch(
                        by: ticketMissing.map(\.name), patterns: ticketMissing.compactMap(\.ticketPattern)))
        }
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
