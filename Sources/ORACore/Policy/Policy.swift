public import Foundation

/// One rule of a policy set: which helpers may offer assistance to which machines, with which access, when and
/// under what requirements — or, with `effect: deny`, who may not.
public struct Policy: Sendable, Hashable {
    /// Whether the policy grants or forbids.
    public enum Effect: Sendable, Hashable {
        /// Grants offers up to this access.
        case allow(AccessMode)
        /// Forbids offers; any matching deny wins over every allow.
        case deny
    }

    /// Who the policy is about.
    public struct Helpers: Sendable, Hashable {
        /// Every operator.
        public var any: Bool
        /// Operators in any of these groups (nested membership counts).
        public var groups: Set<DistinguishedName>

        /// Creates a helper selector.
        public init(any: Bool = false, groups: Set<DistinguishedName> = []) {
            self.any = any
            self.groups = groups
        }
    }

    /// Which machines the policy is about. A machine matches if any of the lists matches it and nothing in `except`
    /// does.
    public struct Targets: Sendable, Hashable {
        /// Every domain machine.
        public var any: Bool
        /// Machines whose computer object lies in one of these subtrees.
        public var organizationalUnits: [DistinguishedName]
        /// Machines whose computer object lies directly in one of these OUs, not in an OU below them.
        public var oneLevelUnits: [DistinguishedName]
        /// Machines in any of these computer groups (nested membership counts).
        public var groups: Set<DistinguishedName>
        /// Machines by name, compared case-insensitively (kept in lower case).
        @LowercasedNames public var machines: Set<String>
        /// Machines the policy is not about although the lists above name them.
        public var except: Exclusions

        /// Creates a target selector.
        public init(
            any: Bool = false,
            organizationalUnits: [DistinguishedName] = [],
            oneLevelUnits: [DistinguishedName] = [],
            groups: Set<DistinguishedName> = [],
            machines: Set<String> = [],
            except: Exclusions = Exclusions()
        ) {
            self.any = any
            self.organizationalUnits = organizationalUnits
            self.oneLevelUnits = oneLevelUnits
            self.groups = groups
            self.machines = machines
            self.except = except
        }
    }

    /// The machines a policy's `targets.except` leaves out, named as its targets name machines.
    public struct Exclusions: Sendable, Hashable {
        /// Machines whose computer object lies in one of these subtrees.
        public var organizationalUnits: [DistinguishedName]
        /// Machines whose computer object lies directly in one of these OUs.
        public var oneLevelUnits: [DistinguishedName]
        /// Machines in any of these computer groups (nested membership counts).
        public var groups: Set<DistinguishedName>
        /// Machines by name, compared case-insensitively (kept in lower case).
        @LowercasedNames public var machines: Set<String>

        /// Creates exclusions.
        public init(
            organizationalUnits: [DistinguishedName] = [], oneLevelUnits: [DistinguishedName] = [],
            groups: Set<DistinguishedName> = [], machines: Set<String> = []
        ) {
            self.organizationalUnits = organizationalUnits
            self.oneLevelUnits = oneLevelUnits
            self.groups = groups
            self.machines = machines
        }

        /// Whether nothing is excluded.
        public var isEmpty: Bool {
            organizationalUnits.isEmpty && oneLevelUnits.isEmpty && groups.isEmpty && machines.isEmpty
        }

        /// The entry that leaves `machine` out, as the policy file writes it (`ous: ou=Kiosks,…`,
        /// `ous: ou=Berlin,… (one level)`, `groups: cn=…`, `machines: ws-0101`); `nil` when none does.
        public func entry(excluding machine: MachineFacts) -> String? {
            if machines.contains(machine.lowercasedName) { return "machines: \(machine.lowercasedName)" }
            if let unit = organizationalUnits.first(where: { machine.subtrees.contains($0) }) {
                return "ous: \(unit)"
            }
            if let parent = machine.parent, let unit = oneLevelUnits.first(where: { $0 == parent }) {
                return "ous: \(unit) (one level)"
            }
            // Sorted, so the same machine is always explained by the same group.
            if let group = groups.filter({ machine.groups.contains($0) }).map(\.description).sorted().first {
                return "groups: \(group)"
            }
            return nil
        }
    }

    /// A policy that would be about an operator and a machine but leaves the machine out, and the entry of its
    /// `targets.except` that does.
    public struct Exclusion: Sendable, Hashable {
        /// The policy's name.
        public var policy: String
        /// The entry, as the policy file writes it under `targets.except` (`ous: ou=Kiosks,…`).
        public var entry: String

        /// Creates an exclusion.
        public init(policy: String, entry: String) {
            self.policy = policy
            self.entry = entry
        }
    }

    /// How the helpers of an allow policy answer invitations from its machines (the person there asking for help),
    /// besides offering help.
    public struct InvitationRules: Sendable, Hashable {
        /// Whether they may answer invitations at all.
        public var answer: Bool
        /// The most an invitation opens: at most the policy's own access; the policy's access when `nil`.
        public var access: AccessMode?
        /// The longest an invitation they answer may have been made valid for.
        public var maximumLifetime: Duration
        /// Whether they answer only invitations protected by a password.
        public var passwordRequired: Bool
        /// Domains (in lower case) that invitations from its machines may be mailed to, besides directory users'
        /// addresses.
        public var mailDomains: Set<String>

        /// The longest lifetime any invitation may have.
        public static let longestLifetime = Duration.seconds(7 * 86_400)

        /// Creates rules; by default, invitations are answered as offers are made, for up to 7 days, with or without
        /// a password.
        public init(
            answer: Bool = true, access: AccessMode? = nil, maximumLifetime: Duration = Self.longestLifetime,
            passwordRequired: Bool = false, mailDomains: Set<String> = []
        ) {
            self.answer = answer
            self.access = access
            self.maximumLifetime = maximumLifetime
            self.passwordRequired = passwordRequired
            self.mailDomains = mailDomains
        }
    }

    /// The policy's name, unique across the set.
    public var name: String
    /// What the policy is for, in the administrator's words.
    public var description: String?
    /// Where the policy is written.
    public var location: SourceLocation
    /// Allow (with access) or deny.
    public var effect: Effect
    /// Who.
    public var helpers: Helpers
    /// Which machines.
    public var targets: Targets
    /// A pattern the offer's ticket id must match entirely, if the policy requires a ticket. A pattern that is not
    /// a valid regular expression matches no ticket.
    public var ticketPattern: String? {
        get { ticketExpression?.pattern }
        set { ticketExpression = newValue.map(TicketExpression.init(pattern:)) }
    }
    var ticketExpression: TicketExpression?
    /// When the policy applies; always when `nil`.
    public var schedule: Schedule?
    /// How long the person at the machine has to answer.
    public var consentTimeout: Duration
    /// The longest a session under this policy may last.
    public var maximumDuration: Duration
    /// How its helpers answer invitations (allow policies only).
    public var invitations: InvitationRules

    /// The default time the novice has to answer.
    public static let defaultConsentTimeout = Duration.seconds(60)
    /// The default longest session.
    public static let defaultMaximumDuration = Duration.seconds(2 * 3600)

    /// Creates a policy.
    public init(
        name: String,
        description: String? = nil,
        location: SourceLocation,
        effect: Effect,
        helpers: Helpers,
        targets: Targets,
        ticketPattern: String? = nil,
        schedule: Schedule? = nil,
        consentTimeout: Duration = Policy.defaultConsentTimeout,
        maximumDuration: Duration = Policy.defaultMaximumDuration,
        invitations: InvitationRules = InvitationRules()
    ) {
        self.invitations = invitations
        self.name = name
        self.description = description
        self.location = location
        self.effect = effect
        self.helpers = helpers
        self.targets = targets
        self.ticketExpression = ticketPattern.map(TicketExpression.init(pattern:))
        self.schedule = schedule
        self.consentTimeout = consentTimeout
        self.maximumDuration = maximumDuration
    }

    /// Whether the policy is about an operator in `groups`.
    public func covers(operatorGroups groups: Set<DistinguishedName>) -> Bool {
        helpers.any || !helpers.groups.isDisjoint(with: groups)
    }

    /// Whether `ticket` satisfies the ticket requirement (always, when there is none).
    public func accepts(ticket: String?) -> Bool {
        guard let ticketExpression else { return true }
        guard let ticket, !ticket.isEmpty, ticket.utf16.count <= 256 else { return false }
        return ticketExpression.matchesEntirely(ticket)
    }
}

/// Machine names, kept in lower case as policies compare them, however they are set.
@propertyWrapper
public struct LowercasedNames: Sendable, Hashable {
    private var names: Set<String>

    /// Keeps `wrappedValue` in lower case.
    public init(wrappedValue: Set<String>) {
        names = Set(wrappedValue.map { $0.lowercased() })
    }

    /// The names, in lower case.
    public var wrappedValue: Set<String> {
        get { names }
        set { names = Set(newValue.map { $0.lowercased() }) }
    }
}

/// A ticket pattern compiled once. `NSRegularExpression` is immutable and safe to share between threads once made.
final class TicketExpression: @unchecked Sendable, Hashable {
    /// The longest pattern a policy file may give, in UTF-16 code units (as `NSRegularExpression` counts): a ticket
    /// format needs a few dozen characters, and compiling patterns of many kilobytes costs time and memory that a
    /// policy check should not spend (and longer patterns leak in swift-corelibs-foundation; see Docs/Fuzzing.md).
    static let maximumPatternLength = 256

    let pattern: String
    /// `nil` when the pattern is not a valid regular expression: then no ticket matches (fail closed).
    private let expression: NSRegularExpression?

    init(pattern: String) {
        self.pattern = pattern
        self.expression = try? NSRegularExpression(pattern: pattern)
    }

    /// Whether the pattern compiled.
    var isValid: Bool { expression != nil }

    func matchesEntirely(_ text: String) -> Bool {
        guard let expression else { return false }
        let range = NSRange(text.startIndex..., in: text)
        guard let match = expression.firstMatch(in: text, options: [.anchored], range: range) else { return false }
        return match.range == range
    }

    static func == (lhs: TicketExpression, rhs: TicketExpression) -> Bool { lhs.pattern == rhs.pattern }
    func hash(into hasher: inout Hasher) { hasher.combine(pattern) }
}

/// What policy needs to know about the machine an offer is for, from its directory computer object.
public struct MachineFacts: Sendable, Hashable {
    /// The machine's name.
    public let name: String
    /// Its computer object.
    public let dn: DistinguishedName
    /// Its computer groups, nested included.
    public let groups: Set<DistinguishedName>

    /// The computer object and every entry above it: the subtrees the machine lies in.
    public let subtrees: [DistinguishedName]
    /// The entry the computer object lies directly in (its OU or container).
    public var parent: DistinguishedName? { subtrees.count > 1 ? subtrees[1] : nil }
    /// The name in lower case, as policies compare it.
    public let lowercasedName: String

    /// Creates machine facts.
    public init(name: String, dn: DistinguishedName, groups: Set<DistinguishedName>) {
        self.name = name
        self.dn = dn
        self.groups = groups
        self.subtrees = [dn] + dn.ancestors
        self.lowercasedName = name.lowercased()
    }

    /// The facts of a directory computer.
    public init(_ computer: Computer) {
        self.init(name: computer.name, dn: computer.dn, groups: computer.groups)
    }
}
