public import Foundation

/// Who gains or loses access when one policy set replaces another: for each group of helpers that a changed policy
/// names, how many machines go from one access to another (`none`, `view`, `control`). An administrator reads it
/// before applying, as "cn=Helpdesk Tier 1,…: 40 machines view → none".
public struct PolicyImpact: Sendable, Hashable {
    /// The access a group's helpers have on a machine: nothing, viewing, or control.
    public enum Level: String, Sendable, Hashable, Comparable {
        case none, view, control

        public static func < (lhs: Self, rhs: Self) -> Bool {
            let order: [Self] = [.none, .view, .control]
            return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
        }
    }

    /// How many machines go from one level to another for one group.
    public struct Change: Sendable, Hashable {
        public var from: Level
        public var to: Level
        public var machines: Int
    }

    /// One group's changes; `group` is `nil` for policies about every helper (`helpers: {any: true}`).
    public struct Group: Sendable, Hashable {
        public var group: DistinguishedName?
        public var changes: [Change]

        /// "cn=Helpdesk Tier 1,…: 40 machines view → none, 2 machines none → view".
        public var summary: String {
            (group?.description ?? "every helper") + ": "
                + changes.map {
                    "\($0.machines) machine\($0.machines == 1 ? "" : "s") \($0.from.rawValue) → \($0.to.rawValue)"
                }
                .joined(separator: ", ")
        }
    }

    /// The groups whose access changes, in the order their DNs sort.
    public var groups: [Group]
    /// How many machines were compared.
    public var machines: Int

    /// What replacing `old` (none: nothing was allowed) with `new` changes at `date` for the groups the changed
    /// policies name, on `machines`. A ticket requirement does not count against access (the helper brings the
    /// ticket); a schedule does (the answer is for `date`).
    public init(from old: PolicySet?, to new: PolicySet, on machines: [MachineFacts], at date: Date) {
        let diff = PolicyDiff(from: old, to: new)
        let touched = Set(diff.added + diff.changed + diff.removed)
        var groups: Set<DistinguishedName> = []
        var everyone = false
        for policy in (old?.policies ?? []) + new.policies where touched.contains(policy.name) {
            groups.formUnion(policy.helpers.groups)
            everyone = everyone || policy.helpers.any
        }
        var result: [Group] = []
        let subjects: [DistinguishedName?] = groups.sorted { $0.normalized < $1.normalized } + (everyone ? [nil] : [])
        for group in subjects {
            let operatorGroups: Set<DistinguishedName> = group.map { [$0] } ?? []
            var counts: [Change: Int] = [:]
            for machine in machines {
                let before = old.map { Self.level($0, operatorGroups, machine, date) } ?? Level.none
                let after = Self.level(new, operatorGroups, machine, date)
                guard before != after else { continue }
                counts[Change(from: before, to: after, machines: 0), default: 0] += 1
            }
            guard !counts.isEmpty else { continue }
            let changes = counts.map { Change(from: $0.key.from, to: $0.key.to, machines: $0.value) }
                .sorted { ($0.from, $0.to) > ($1.from, $1.to) }
            result.append(Group(group: group, changes: changes))
        }
        self.groups = result
        self.machines = machines.count
    }

    /// The strongest access `set` gives helpers with `groups` on `machine` at `date`.
    static func level(
        _ set: PolicySet, _ groups: Set<DistinguishedName>, _ machine: MachineFacts, _ date: Date
    ) -> Level {
        for (mode, level) in [(AccessMode.control, Level.control), (.view, .view)] {
            let decision = set.decide(operatorGroups: groups, machine: machine, mode: mode, ticket: nil, at: date)
            if decision.isAllowed { return level }
            switch decision.denial {
            case .ticketRequired, .ticketDoesNotMatch: return level
            default: continue
            }
        }
        return .none
    }
}
