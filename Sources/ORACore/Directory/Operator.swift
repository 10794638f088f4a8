/// A person who logged in to ora with their directory account: a helpdesk operator, a security reviewer or an
/// administrator.
public struct Operator: Sendable, Hashable, Codable {
    /// The person's entry in the directory.
    public var dn: String
    /// The account name they log in with (`uid` or `sAMAccountName`).
    public var account: String
    /// The name shown to the person at the machine when this operator offers help.
    public var displayName: String
    /// E-mail address, if the directory has one.
    public var mail: String?
    /// Job title ("IT Support Engineer"), if the directory has one: shown to the person at the machine.
    public var title: String?
    /// Department ("Service Desk"), if the directory has one: shown to the person at the machine.
    public var department: String?

    enum CodingKeys: String, CodingKey {
        case dn, account, mail, title, department
        case displayName = "display_name"
    }

    /// Creates an operator.
    public init(
        dn: String, account: String, displayName: String, mail: String?, title: String? = nil,
        department: String? = nil
    ) {
        self.dn = dn
        self.account = account
        self.displayName = displayName
        self.mail = mail
        self.title = title
        self.department = department
    }
}

/// A domain computer as the directory describes it; policy targets machines by these facts.
public struct Computer: Sendable, Hashable {
    /// The name ora knows the machine by (the computer object's `cn`, or `sAMAccountName` without the `$`).
    public var name: String
    /// The computer object.
    public var dn: DistinguishedName
    /// Every group the computer belongs to, nested groups included.
    public var groups: Set<DistinguishedName>

    /// Creates a computer.
    public init(
        name: String,
        dn: DistinguishedName,
        groups: Set<DistinguishedName>
    ) {
        self.name = name
        self.dn = dn
        self.groups = groups
    }

    /// The organisational units the object lies in, nearest first.
    public var organizationalUnits: [DistinguishedName] {
        dn.ancestors.enumerated().filter { level, _ in dn.isOrganizationalUnit(level: level + 1) }.map(\.element)
    }
}
