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

    /// Level by level: the groups whose `member` or `uniqueMember` is one of the DNs found at the previous level.
    private func groupsByMemberSearch(
        of member: DistinguishedName
    ) async throws(DirectoryError) -> Set<DistinguishedName> {
        var found: Set<DistinguishedName> = []
        var frontier = [member.original]
        var depth = 0
        while !frontier.isEmpty {
            depth += 1
            guard depth <= settings.maximumGroupDepth else {
                throw .failed(reason: "groups of \(member) nest deeper than \(settings.maximumGroupDepth) levels")
            }
            var next: [String] = []
            // Several DNs per query keeps the number of round trips to the depth of nesting.
            for batch in stride(from: 0, to: frontier.count, by: 50).map({
                Array(frontier[$0..<min($0 + 50, frontier.count)])
            }) {
                let terms = batch.map { dn in
                    let value = LDAPFilter.escape(dn)
                    return "(member=\(value))(uniqueMember=\(value))"
                }.joined()
                let filter =
                    "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))(|\(terms)))"
                let entries: [LDAPEntry]
                do {
                    entries = try await search(
                        base: groupBase, scope: .subtree, filter: filter, attributes: [],
                        sizeLimit: Int32(settings.maximumGroups + 1))
                } catch {
                    throw sizeOrDirectoryError(error, member: member)
                }
                for entry in entries {
                    guard let dn = try? DistinguishedName(entry.dn), found.insert(dn).inserted else { continue }
                    next.append(entry.dn)
                }
                guard found.count <= settings.maximumGroups else { throw tooMany(member) }
            }
            frontier = next
        }
        return found
    }

    /// Level by level: the `memberOf` values of the entry, then of each newly found group.
    private func groupsByMemberOf(of member: DistinguishedName) async throws(DirectoryError) -> Set<DistinguishedName> {
        var found: Set<DistinguishedName> = []
        var frontier = [member.original]
        var depth = 0
        while !frontier.isEmpty {
            depth += 1
            guard depth <= settings.maximumGroupDepth + 1 else {
                throw .failed(reason: "groups of \(member) nest deeper than \(settings.maximumGroupDepth) levels")
            }
            var next: [String] = []
            for dn in frontier {
                let entries: [LDAPEntry]
                do {
                    entries = try await search(
                        base: dn, scope: .base, filter: "(objectClass=*)", attributes: ["memberOf"], sizeLimit: 1)
                } catch .operationFailed(_, 32, _) {
                    continue  // a memberOf value naming a deleted group
                } catch {
                    throw directoryError(error, doing: "reading memberOf")
                }
                for value in entries.first?.values("memberOf") ?? [] {
                    guard let group = try? DistinguishedName(value), found.insert(group).inserted else { continue }
                    next.append(value)
                }
                guard found.count <= settings.maximumGroups else { throw tooMany(member) }
            }
            frontier = next
        }
        return found
    }

    /// One query with Active Directory's LDAP_MATCHING_RULE_IN_CHAIN, which walks nesting on the server.
    private func groupsByInChainRule(
        of member: DistinguishedName
    ) async throws(DirectoryError) -> Set<DistinguishedName> {
        let filter = "(member:1.2.840.113556.1.4.1941:=\(LDAPFilter.escape(member.original)))"
        let entries: [LDAPEntry]
        do {
            entries = try await search(
                base: groupBase, scope: .subtree, filter: filter, attributes: [],
                sizeLimit: Int32(settings.maximumGroups + 1))
        } catch {
            throw sizeOrDirectoryError(error, member: member)
        }
        guard entries.count <= settings.maximumGroups else { throw tooMany(member) }
        return Set(entries.compactMap { try? DistinguishedName($0.dn) })
    }

    private func sizeOrDirectoryError(_ error: LDAPError, member: DistinguishedName) -> DirectoryError {
        if case .operationFailed(_, 4, _) = error { return tooMany(member) }  // sizeLimitExceeded
        return directoryError(error, doing: "resolving groups")
    }

    private func tooMany(_ member: DistinguishedName) -> DirectoryError {
        .failed(reason: "\(member) is in more than \(settings.maximumGroups) groups")
    }
}
