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
    /// Every directory entry the files name, where they name it (empty for a set not read from files).
    public let references: [DirectoryReference]
    /// Positions in `policies` by what their targets name, so a decision looks only at the policies about the
    /// machine, not at every policy.
    private let targetIndex: TargetIndex

    /// Creates a set.
    public init(
        policies: [Policy], roles: RoleAssignments = RoleAssignments(), files: [File] = [],
        references: [DirectoryReference] = []
    ) {
        self.policies = policies
        self.roles = roles
        self.files = files
        self.references = references
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
    /// Default deny: no matching policy, no offer. A policy whose `targets.except` names the machine does not match
    /// it (the decision names it among `exclusions`). Any matching deny policy in force wins. Otherwise the strongest
    /// access among matching allow policies whose schedule and ticket requirement are met decides; `control` includes
    /// `view`. The decision names the policies that decided it and, when denied, why.
    /// - Parameters:
    ///   - operatorGroups: the operator's groups, nested included.
    ///   - machine: the target machine's directory facts.
    ///   - mode: the access the offer asks for.
    ///   - ticket: the ticket or reason id the offer carries.
    ///   - date: when the offer is made.
    ///   - invitation: for opening an invitation, what it asks of the policies (each allow policy's `invitations`
    ///     rules apply); `nil` for an offer.
    public func decide(
        operatorGroups: Set<DistinguishedName>,
        machine: MachineFacts,
        mode: AccessMode,
        ticket: String?,
        at date: Date,
        invitation: InvitationTerms? = nil
    ) -> Decision {
        // Work with positions, not copies of policies: a decision touches only a handful of them.
        var matching: [Int] = []
        var exclusions: [Policy.Exclusion] = []
        var previous = -1
        for position in targetIndex.positions(for: machine) where position != previous {
            previous = position
            let policy = policies[position]
            guard policy.covers(operatorGroups: operatorGroups) else { continue }
            // A machine its `except` names is outside the policy, as if its targets did not name it.
            if !policy.targets.except.isEmpty, let entry = policy.targets.except.entry(excluding: machine) {
                exclusions.append(Policy.Exclusion(policy: policy.name, entry: entry))
                continue
            }
            matching.append(position)
        }
        var decision = decide(
            matching, mode: mode, ticket: ticket, at: date, invitation: invitation,
            excluded: !exclusions.isEmpty)
        decision.exclusions = exclusions
        return decision
    }

    /// Decides among the policies at `matching`, each about the operator and the machine.
    private func decide(
        _ matching: [Int], mode: AccessMode, ticket: String?, at date: Date,
        invitation: InvitationTerms?, excluded: Bool
    ) -> Decision {
        guard !matching.isEmpty else { return Decision(denied: excluded ? .excluded : .noPolicyMatched) }

        var denials: [String] = []
        var outsideSchedule: [String] = []
        var ticketMissing: [Int] = []
        var sufficient: [Int] = []
        var weaker: [String] = []
        var notAnswering: [String] = []
        var tooShort: [Int] = []
        var passwordMissing: [String] = []
        var strongest = mode
        for position in matching {
            let policy = policies[position]
            let inSchedule = policy.schedule?.contains(date) ?? true
            guard case .allow(var access) = policy.effect else {
                if inSchedule { denials.append(policy.name) }
                continue
            }
            guard inSchedule else {
                outsideSchedule.append(policy.name)
                continue
            }
            if let invitation {
                let rules = policy.invitations
                guard rules.answer else {
                    notAnswering.append(policy.name)
                    continue
                }
                guard invitation.lifetime <= rules.maximumLifetime else {
                    tooShort.append(position)
                    continue
                }
                guard invitation.hasPassword || !rules.passwordRequired else {
                    passwordMissing.append(policy.name)
                    continue
                }
                if let cap = rules.access { access = min(access, cap) }
            }
            // Access first: a ticket is asked for only where it would be enough.
            guard access >= mode else {
                weaker.append(policy.name)
                continue
            }
            guard policy.accepts(ticket: ticket) else {
                ticketMissing.append(position)
                continue
            }
            sufficient.append(position)
            strongest = max(strongest, access)
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
        if !ticketMissing.isEmpty {
            let names = ticketMissing.map { policies[$0].name }
            if ticket?.isEmpty ?? true {
                return Decision(denied: .ticketRequired(by: names))
            }
            return Decision(
                denied: .ticketDoesNotMatch(
                    by: names, patterns: ticketMissing.compactMap { policies[$0].ticketPattern }))
        }
        if !weaker.isEmpty {
            return Decision(denied: .accessTooLow(allowed: .view, by: weaker))
        }
        if !passwordMissing.isEmpty {
            return Decision(denied: .invitationPasswordRequired(by: passwordMissing))
        }
        if let invitation, !tooShort.isEmpty {
            return Decision(
                denied: .invitationTooLong(
                    lifetime: invitation.lifetime,
                    longest: tooShort.map { policies[$0].invitations.maximumLifetime }.max() ?? .zero,
                    by: tooShort.map { policies[$0].name }))
        }
        if !notAnswering.isEmpty {
            return Decision(denied: .invitationsNotAnswered(by: notAnswering))
        }
        // Only deny policies outside their schedule matched: none applies now.
        guard !outsideSchedule.isEmpty else { return Decision(denied: excluded ? .excluded : .noPolicyMatched) }
        return Decision(denied: .outsideSchedule(of: outsideSchedule))
    }
}

/// A directory entry that a policy file names: a group of helpers or of a role, an OU, a computer group.
public struct DirectoryReference: Sendable, Hashable {
    /// What the entry is to the policy.
    public enum Kind: String, Sendable, Hashable {
        /// A group of operators (`helpers.groups`, `roles`).
        case operatorGroup = "group"
        /// A subtree of computers (`targets.ous`).
        case organizationalUnit = "ou"
        /// A group of computers (`targets.groups`).
        case computerGroup = "computer_group"
    }

    /// The entry, as written.
    public var dn: DistinguishedName
    /// What it is to the policy.
    public var kind: Kind
    /// Where it is written.
    public var location: SourceLocation?
    /// The setting that names it (`policies[1].helpers.groups[0]`).
    public var keyPath: String

    /// Creates a reference.
    public init(dn: DistinguishedName, kind: Kind, location: SourceLocation?, keyPath: String) {
        self.dn = dn
        self.kind = kind
        self.location = location
        self.keyPath = keyPath
    }
}

extension PolicySet {
    /// What an invitation asks of the policies that would answer it.
    public struct InvitationTerms: Sendable, Hashable {
        /// How long it was made valid for, from its making to its expiry.
        public var lifetime: Duration
        /// Whether it is protected by a password.
        public var hasPassword: Bool

        /// Creates terms.
        public init(lifetime: Duration, hasPassword: Bool) {
            self.lifetime = lifetime
            self.hasPassword = hasPassword
        }

        /// The terms of `invitation`; one whose times cannot be read asks for longer than any policy allows.
        public init(_ invitation: Invitation) {
            let lifetime = invitation.creation.flatMap { created in
                invitation.expiry.map { Duration.seconds(max(0, $0.timeIntervalSince(created))) }
            }
            self.init(
                lifetime: lifetime ?? Policy.InvitationRules.longestLifetime + .seconds(1),
                hasPassword: invitation.password != nil)
        }
    }

    /// What the allow policies about a machine let its person ask for, whoever answers.
    public struct InvitationLimits: Sendable, Hashable {
        /// The policies whose helpers may answer invitations from the machine (at some time, with some ticket).
        public var answeringPolicies: [String]
        /// The longest lifetime any of them accepts.
        public var longestLifetime: Duration
        /// Whether every one of them requires a password.
        public var passwordRequired: Bool
        /// The domains any of them lets invitations be mailed to.
        public var mailDomains: Set<String>

        /// Why an invitation with `terms` would find nobody to answer it, in a sentence for the person at the
        /// machine; `nil` when some policy may answer it.
        public func refusal(of terms: InvitationTerms, machine: String) -> String? {
            if answeringPolicies.isEmpty {
                return "no policy lets anyone answer invitations from \(machine)"
            }
            if terms.lifetime > longestLifetime {
                return "policy lets invitations from \(machine) be valid for at most "
                    + longestLifetime.text + "; make it valid for less"
            }
            if passwordRequired && !terms.hasPassword {
                return "policy requires invitations from \(machine) to be protected by a password"
            }
            return nil
        }
    }

    /// The limits the allow policies about `machine` set on its invitations, whoever answers them: the person may
    /// ask only for what some policy would answer.
    public func invitationLimits(for machine: MachineFacts) -> InvitationLimits {
        var limits = InvitationLimits(
            answeringPolicies: [], longestLifetime: .zero, passwordRequired: true, mailDomains: [])
        var previous = -1
        for position in targetIndex.positions(for: machine) where position != previous {
            previous = position
            let policy = policies[position]
            guard case .allow = policy.effect, policy.invitations.answer,
                policy.targets.except.isEmpty || policy.targets.except.entry(excluding: machine) == nil
            else { continue }
            limits.answeringPolicies.append(policy.name)
            limits.longestLifetime = max(limits.longestLifetime, policy.invitations.maximumLifetime)
            limits.passwordRequired = limits.passwordRequired && policy.invitations.passwordRequired
            limits.mailDomains.formUnion(policy.invitations.mailDomains)
        }
        if limits.answeringPolicies.isEmpty { limits.passwordRequired = false }
        return limits
    }
}

/// Where policies are, by the machines, computer groups and subtrees their targets name.
private struct TargetIndex: Sendable {
    var any: [Int] = []
    var byMachine: [String: [Int]] = [:]
    var byGroup: [DistinguishedName: [Int]] = [:]
    var bySubtree: [DistinguishedName: [Int]] = [:]
    var byParent: [DistinguishedName: [Int]] = [:]

    init(_ policies: [Policy]) {
        for (index, policy) in policies.enumerated() {
            let targets = policy.targets
            if targets.any { any.append(index) }
            for machine in targets.machines { byMachine[machine, default: []].append(index) }
            for group in targets.groups { byGroup[group, default: []].append(index) }
            for subtree in targets.organizationalUnits { bySubtree[subtree, default: []].append(index) }
            for unit in targets.oneLevelUnits { byParent[unit, default: []].append(index) }
        }
    }

    /// The positions of every policy whose targets include `machine`, sorted, possibly repeated (`except` is not
    /// looked at here).
    func positions(for machine: MachineFacts) -> [Int] {
        var positions = any
        if let found = byMachine[machine.lowercasedName] { positions += found }
        for group in machine.groups {
            if let found = byGroup[group] { positions += found }
        }
        for subtree in machine.subtrees {
            if let found = bySubtree[subtree] { positions += found }
        }
        if let parent = machine.parent, let found = byParent[parent] { positions += found }
        positions.sort()
        return positions
    }
}
