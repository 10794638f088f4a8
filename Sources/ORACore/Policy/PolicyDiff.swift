/// What changes, policy by policy, when one set replaces another.
public struct PolicyDiff: Sendable, Equatable {
    /// Policies only in the new set.
    public var added: [String]
    /// Policies only in the old set.
    public var removed: [String]
    /// Policies in both whose content differs (where they are written does not count).
    public var changed: [String]
    /// Whether the role groups differ.
    public var rolesChanged: Bool

    /// Compares `old` (nothing when `nil`) with `new`.
    public init(from old: PolicySet?, to new: PolicySet) {
        func key(_ policy: Policy) -> String { policy.name.lowercased() }
        func content(_ policy: Policy) -> Policy {
            var copy = policy
            copy.location = SourceLocation(file: "", line: 0, column: 0)
            return copy
        }
        let before = Dictionary((old?.policies ?? []).map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new.policies.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        added = new.policies.filter { before[key($0)] == nil }.map(\.name)
        removed = (old?.policies ?? []).filter { after[key($0)] == nil }.map(\.name)
        changed = new.policies.filter { policy in
            guard let previous = before[key(policy)] else { return false }
            return content(previous) != content(policy)
        }.map(\.name)
        rolesChanged = (old?.roles ?? RoleAssignments()) != new.roles
    }

    /// Whether nothing changes.
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty && !rolesChanged }

    /// One line per change: `+ name`, `- name`, `~ name`, `~ roles`.
    public var lines: [String] {
        added.map { "+ \($0)" } + removed.map { "- \($0)" } + changed.map { "~ \($0)" }
            + (rolesChanged ? ["~ roles"] : [])
    }
}
