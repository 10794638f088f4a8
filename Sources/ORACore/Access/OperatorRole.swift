/// What an operator may do in ora beyond offering help, decided by their directory groups.
public enum OperatorRole: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Applies policy, enrolls and revokes agents.
    case administrator
    /// Reviews and exports the audit log.
    case auditor

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Which directory groups grant which role.
public struct RoleAssignments: Sendable, Hashable {
    /// Groups whose members (nested included) are administrators.
    public var administrators: Set<DistinguishedName>
    /// Groups whose members (nested included) are auditors.
    public var auditors: Set<DistinguishedName>

    /// Creates assignments.
    public init(administrators: Set<DistinguishedName> = [], auditors: Set<DistinguishedName> = []) {
        self.administrators = administrators
        self.auditors = auditors
    }

    /// The roles of someone in `groups`.
    public func roles(forGroups groups: Set<DistinguishedName>) -> Set<OperatorRole> {
        var roles: Set<OperatorRole> = []
        if !administrators.isDisjoint(with: groups) { roles.insert(.administrator) }
        if !auditors.isDisjoint(with: groups) { roles.insert(.auditor) }
        return roles
    }
}
