public import ORACore

extension DirectoryClient {
    /// Finds a domain computer by name, with its OUs and nested groups, from the cache when it is fresh.
    /// - Parameter name: the machine's name (`WS-0101`; for Active Directory without the trailing `$`).
    /// - Returns: the computer, or `nil` when the directory has no such computer object.
    /// - Throws: `.unavailable` when the directory cannot answer; `.failed` when the name matches several objects.
    public func computer(named name: String) async throws(DirectoryError) -> Computer? {
        let key = name.lowercased()
        if let cached = computerCache.value(for: key) { return cached }
        guard Self.isAcceptableName(name) else { return nil }
        let layout = settings.layout
        let entries: [LDAPEntry]
        do {
            entries = try await search(
                base: layout.computerBase ?? settings.baseDN,
                scope: .subtree,
                filter: LDAPFilter.fill(layout.computerFilter, with: ["name": name]),
                attributes: [layout.computerNameAttribute],
                sizeLimit: 2
            )
        } catch .operationFailed(_, 4, _) {
            throw .failed(reason: "several computer objects are named \(name)")
        } catch {
            throw directoryError(error, doing: "looking up a computer")
        }
        guard let entry = entries.first else { return nil }
        guard entries.count == 1 else { throw .failed(reason: "several computer objects are named \(name)") }
        guard let dn = try? DistinguishedName(entry.dn) else {
            throw .failed(reason: "the directory returned an invalid DN for \(name)")
        }
        var objectName = entry.value(layout.computerNameAttribute) ?? name
        if objectName.hasSuffix("$") { objectName.removeLast() }
        let computer = Computer(
            name: objectName,
            dn: dn,
            groups: try await groups(of: dn)
        )
        computerCache.store(computer, for: key)
        return computer
    }
}
