public import ORACore

extension DirectoryClient {
    /// What the directory says of an entry that a policy names.
    public enum EntryCheck: Sendable, Hashable {
        /// It exists.
        case exists
        /// It does not; the names the directory has that were probably meant, closest first.
        case missing(suggestions: [String])
    }

    /// Whether `dn` exists; if not, the nearest names that do: below the nearest ancestor that exists, the entries
    /// named most like the missing one (`cn=Helpdesk Tier2` → `cn=Helpdesk Tier 2`, `ou=Group` → `ou=Groups`).
    /// - Throws: `DirectoryError` when the directory cannot say.
    public func check(_ dn: DistinguishedName) async throws(DirectoryError) -> EntryCheck {
        if try await exists(dn) { return .exists }
        var missing = dn
        for ancestor in dn.ancestors {
            guard try await exists(ancestor) else {
                missing = ancestor
                continue
            }
            // `missing` is the entry on the path, directly below `ancestor`, that is not there.
            let children: [LDAPEntry]
            do {
                children = try await search(
                    base: ancestor.description, scope: .oneLevel, filter: "(objectClass=*)", attributes: ["1.1"],
                    sizeLimit: 1_000)
            } catch .operationFailed(_, 4, _) {
                return .missing(suggestions: [])  // too many to compare
            } catch {
                throw directoryError(error, doing: "listing the entries below \(ancestor)")
            }
            let names = children.compactMap { try? DistinguishedName($0.dn) }
            let value = missing.rdns.first?.first?.value ?? ""
            let byValue = Dictionary(
                names.map { ($0.rdns.first?.first?.value ?? "", $0) }, uniquingKeysWith: { first, _ in first })
            let nearest = NameSimilarity.nearest(to: value, in: Array(byValue.keys))
            return .missing(
                suggestions: nearest.compactMap { byValue[$0].map { dn.replacing(missing, with: $0).description } })
        }
        return .missing(suggestions: [])
    }

    private func exists(_ dn: DistinguishedName) async throws(DirectoryError) -> Bool {
        do {
            _ = try await search(
                base: dn.description, scope: .base, filter: "(objectClass=*)", attributes: ["1.1"], sizeLimit: 1)
            return true
        } catch .operationFailed(_, 32, _) {
            return false  // noSuchObject
        } catch {
            throw directoryError(error, doing: "looking up \(dn)")
        }
    }
}
