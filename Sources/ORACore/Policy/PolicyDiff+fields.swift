/// One field of a policy that differs between two versions: the values it lost and the values it gained (one each
/// for a single value such as `allow`; any number for a list such as `targets.ous`).
public struct PolicyFieldChange: Sendable, Hashable {
    /// The field, as the policy file names it: `allow`, `description`, `helpers.groups`, `targets.ous`,
    /// `targets.groups`, `targets.machines`, `targets.except.ous`, `targets.except.groups`, `targets.except.machines`,
    /// `targets.any`, `helpers.any`, `require.ticket`, `schedule`,
    /// `consent_timeout`, `max_duration`, `invitations.answer`, `invitations.allow`, `invitations.max_lifetime`,
    /// `invitations.password`, `invitations.email_domains`.
    public var field: String
    /// What the old version had and the new one has not; empty when the field was not set before.
    public var removed: [String]
    /// What the new version has and the old one had not; empty when the field is no longer set.
    public var added: [String]

    /// Creates a change.
    public init(field: String, removed: [String], added: [String]) {
        self.field = field
        self.removed = removed
        self.added = added
    }

    /// The change in words: `allow: view → control`, `targets.ous: + ou=Kiosks,…`,
    /// `require.ticket: none → ^INC…$`.
    public var summary: String {
        if Self.listFields.contains(field) {
            let parts = removed.map { "− \($0)" } + added.map { "+ \($0)" }
            return "\(field): " + parts.joined(separator: "; ")
        }
        return "\(field): \(removed.first ?? "none") → \(added.first ?? "none")"
    }

    /// The fields that hold several values.
    static let listFields: Set<String> = [
        "helpers.groups", "targets.ous", "targets.groups", "targets.machines", "targets.except.ous",
        "targets.except.groups", "targets.except.machines", "invitations.email_domains",
    ]

    /// Every field that differs between `old` and `new`, in the order a policy file lists them.
    public static func changes(from old: Policy, to new: Policy) -> [PolicyFieldChange] {
        var changes: [PolicyFieldChange] = []
        func single(_ field: String, _ before: String?, _ after: String?) {
            guard before != after else { return }
            changes.append(
                PolicyFieldChange(field: field, removed: before.map { [$0] } ?? [], added: after.map { [$0] } ?? []))
        }
        func list(_ field: String, _ before: [String], _ after: [String]) {
            let removed = before.filter { !after.contains($0) }.sorted()
            let added = after.filter { !before.contains($0) }.sorted()
            guard !removed.isEmpty || !added.isEmpty else { return }
            changes.append(PolicyFieldChange(field: field, removed: removed, added: added))
        }
        func names(_ groups: Set<DistinguishedName>) -> [String] { groups.map(\.description) }
        single("description", old.description, new.description)
        single("allow", effect(old.effect), effect(new.effect))
        single("helpers.any", flag(old.helpers.any), flag(new.helpers.any))
        list("helpers.groups", names(old.helpers.groups), names(new.helpers.groups))
        single("targets.any", flag(old.targets.any), flag(new.targets.any))
        list("targets.ous", units(old.targets), units(new.targets))
        list("targets.groups", names(old.targets.groups), names(new.targets.groups))
        list("targets.machines", Array(old.targets.machines), Array(new.targets.machines))
        let (leftOut, nowLeftOut) = (old.targets.except, new.targets.except)
        list(
            "targets.except.ous",
            units(subtrees: leftOut.organizationalUnits, oneLevel: leftOut.oneLevelUnits),
            units(subtrees: nowLeftOut.organizationalUnits, oneLevel: nowLeftOut.oneLevelUnits))
        list("targets.except.groups", names(leftOut.groups), names(nowLeftOut.groups))
        list("targets.except.machines", Array(leftOut.machines), Array(nowLeftOut.machines))
        single("require.ticket", old.ticketPattern, new.ticketPattern)
        single("schedule", old.schedule?.summary, new.schedule?.summary)
        single("consent_timeout", old.consentTimeout.text, new.consentTimeout.text)
        single("max_duration", old.maximumDuration.text, new.maximumDuration.text)
        let (before, after) = (old.invitations, new.invitations)
        single("invitations.answer", before.answer ? "yes" : "no", after.answer ? "yes" : "no")
        single("invitations.allow", before.access?.rawValue, after.access?.rawValue)
        single("invitations.max_lifetime", before.maximumLifetime.text, after.maximumLifetime.text)
        single(
            "invitations.password", before.passwordRequired ? "required" : "optional",
            after.passwordRequired ? "required" : "optional")
        list("invitations.email_domains", Array(before.mailDomains), Array(after.mailDomains))
        return changes
    }

    /// The OUs of `targets`, a one-level one marked so.
    private static func units(_ targets: Policy.Targets) -> [String] {
        units(subtrees: targets.organizationalUnits, oneLevel: targets.oneLevelUnits)
    }

    private static func units(subtrees: [DistinguishedName], oneLevel: [DistinguishedName]) -> [String] {
        subtrees.map(\.description) + oneLevel.map { "\($0) (one level)" }
    }

    /// `view`, `control` or `deny`, as a policy's `allow` (or its `effect: deny`) reads.
    private static func effect(_ effect: Policy.Effect) -> String {
        switch effect {
        case .allow(let mode): mode.rawValue
        case .deny: "deny"
        }
    }

    private static func flag(_ value: Bool) -> String? { value ? "yes" : nil }
}

extension PolicyDiff {
    /// For each policy in both sets whose content differs (`changed`), what changed in it, field by field.
    public static func fieldChanges(
        from old: PolicySet?, to new: PolicySet
    ) -> [(policy: String, changes: [PolicyFieldChange])] {
        let before = Dictionary(
            (old?.policies ?? []).map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        return new.policies.compactMap { policy in
            guard let previous = before[policy.name.lowercased()] else { return nil }
            let changes = PolicyFieldChange.changes(from: previous, to: policy)
            return changes.isEmpty ? nil : (policy.name, changes)
        }
    }
}
