public import ORACore

extension DirectoryClient {
    /// Every group `member` belongs to, directly or through nested groups, from the cache when it is fresh.
    ///
    /// Cycles between groups end the walk (each group is visited once); the depth of nesting and the number of groups
    /// are bounded by the settings, and exceeding them is an error rather than a silently shortened answer.
    /// - Parameter member: a person's or a computer's DN.
    /// - Returns: the groups' DNs.
    /// - Throws: `.unavailable` when the directory cannot answer, `.failed` when a bound is exceeded.
    public func groups(of member: DistinguishedName) async throws(DirectoryError) -> Set<DistinguishedName> {
        if let cached = groupCache.value(for: member) { return cached }
        let groups: Set<DistinguishedName>
        switch settings.layout.groupMembership {
        case .member: groups = try await groupsByMemberSearch(of: member)
        case .memberOf: groups = try await groupsByMemberOf(of: member)
        case .inChain: groups = try await groupsByInChainRule(of: member)
        }
        groupCache.store(groups, for: member)
        return groups
    }

    private var groupBase: String { settings.layout.groupBase ?? settings.baseDN }

    /// Walks up from `member` one level of nesting at a time: `parents` gives the groups that directly contain
    /// any of the DNs found at the previous level. Each group is visited once, so cycles end; more than
    /// `maximumGroupDepth` levels or `maximumGroups` groups is an error.
    private func walkGroups(
        of member: DistinguishedName,
        parents: ([String]) async throws(DirectoryError) -> [String]
    ) async throws(DirectoryError) -> Set<DistinguishedName> {
        var found: Set<DistinguishedName> = []
        var frontier = [member.original]
        for level in 0...settings.maximumGroupDepth {
            var next: [String] = []
            for dn in try await parents(frontier) {
                guard let group = try? DistinguishedName(dn), found.insert(group).inserted else { continue }
                next.append(dn)
            }
            guard found.count <= settings.maximumGroups else { throw tooMany(member) }
            if next.isEmpty { break }
            guard level < settings.maximumGroupDepth else {
                throw .failed(reason: "groups of \(member) nest deeper than \(settings.maximumGroupDepth) levels")
            }
            frontier = next
        }
        return found
    }

    private func groupsByMemberSearch(
        of member: DistinguishedName
    ) async throws(DirectoryError) -> Set<DistinguishedName> {
        try await walkGroups(of: member) { (members: [String]) throws(DirectoryError) -> [String] in
            try await groupsHolding(members, resolving: member)
        }
    }

    private func groupsByMemberOf(of member: DistinguishedName) async throws(DirectoryError) -> Set<DistinguishedName> {
        try await walkGroups(of: member) { (members: [String]) throws(DirectoryError) -> [String] in
            try await memberOfValues(of: members)
        }
    }

    /// The groups whose `member` or `uniqueMember` is one of `members`, fifty DNs per query so the number of round
    /// trips stays at the depth of nesting.
    private func groupsHolding(
        _ members: [String],
        resolving member: DistinguishedName
    ) async throws(DirectoryError) -> [String] {
        var parents: [String] = []
        for start in stride(from: 0, to: members.count, by: 50) {
            let terms = members[start..<min(start + 50, members.count)].map { dn in
                let value = LDAPFilter.escape(dn)
                return "(member=\(value))(uniqueMember=\(value))"
            }.joined()
            parents += try await searchGroups(
                "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))(|\(terms)))",
                resolving: member)
        }
        return parents
    }

    /// The `memberOf` values of each of `members`.
    private func memberOfValues(of members: [String]) async throws(DirectoryError) -> [String] {
        var parents: [String] = []
        for dn in members {
            let entries: [LDAPEntry]
            do {
                entries = try await search(
                    base: dn, scope: .base, filter: "(objectClass=*)", attributes: ["memberOf"], sizeLimit: 1)
            } catch .operationFailed(_, 32, _) {
                continue  // a memberOf value naming a deleted group
            } catch {
                throw directoryError(error, doing: "reading memberOf")
            }
            parents += entries.first?.values("memberOf") ?? []
        }
        return parents
    }

    /// One query with Active Directory's LDAP_MATCHING_RULE_IN_CHAIN, which walks nesting on the server.
    private func groupsByInChainRule(
        of member: DistinguishedName
    ) async throws(DirectoryError) -> Set<DistinguishedName> {
        let groups = try await searchGroups(
            "(member:1.2.840.113556.1.4.1941:=\(LDAPFilter.escape(member.original)))", resolving: member)
        guard groups.count <= settings.maximumGroups else { throw tooMany(member) }
        return Set(groups.compactMap { try? DistinguishedName($0) })
    }

    /// The DNs of the groups under the group base matching `filter`, at most one more than the bound allows.
    private func searchGroups(
        _ filter: String,
        resolving member: DistinguishedName
    ) async throws(DirectoryError) -> [String] {
        do {
            return try await search(
                base: groupBase, scope: .subtree, filter: filter, attributes: [],
                sizeLimit: Int32(settings.maximumGroups + 1)
            ).map(\.dn)
        } catch {
            throw sizeOrDirectoryError(error, member: member)
        }
    }

    private func sizeOrDirectoryError(_ error: LDAPError, member: DistinguishedName) -> DirectoryError {
        if case .operationFailed(_, 4, _) = error { return tooMany(member) }  // sizeLimitExceeded
        return directoryError(error, doing: "resolving groups")
    }

    private func tooMany(_ member: DistinguishedName) -> DirectoryError {
        .failed(reason: "\(member) is in more than \(settings.maximumGroups) groups")
    }
}
