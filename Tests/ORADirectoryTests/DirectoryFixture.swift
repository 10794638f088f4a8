import Foundation
import ORACore
import ORADirectory
import ORATestSupport

/// Entries a test adds to the shared slapd under an OU of its own, removed afterwards.
final class DirectoryFixture: @unchecked Sendable {
    let services: TestServices
    let base: String

    init(services: TestServices) async throws {
        self.services = services
        base = "ou=test-\(UUID().uuidString.lowercased()),dc=corp,dc=example"
        try await services.ldapModify(
            """
            dn: \(base)
            changetype: add
            objectClass: organizationalUnit
            ou: \(base.dropFirst(3).prefix { $0 != "," })

            """)
    }

    deinit {
        let (services, base) = (services, base)
        Task { try? await services.ldapDeleteTree(base) }
    }

    /// Adds a person with a password; returns their DN.
    @discardableResult
    func addPerson(
        rdn: String, uid: String, password: String, displayName: String = "Test Person"
    ) async throws -> String {
        let dn = "\(rdn),\(base)"
        var lines = ["dn: \(dn)", "changetype: add", "objectClass: inetOrgPerson", "uid: \(uid)", "sn: Person"]
        if !rdn.lowercased().hasPrefix("cn=") { lines.append("cn: \(uid)") }
        lines.append("displayName:: \(Data(displayName.utf8).base64EncodedString())")
        lines.append("userPassword:: \(Data(password.utf8).base64EncodedString())")
        try await services.ldapModify(lines.joined(separator: "\n") + "\n\n")
        return dn
    }

    /// Adds a `groupOfNames` group; returns its DN.
    @discardableResult
    func addGroup(_ name: String, members: [String]) async throws -> String {
        let dn = "cn=\(name),\(base)"
        try await services.ldapModify(
            """
            dn: \(dn)
            changetype: add
            objectClass: groupOfNames
            cn: \(name)
            \(members.map { "member: \($0)" }.joined(separator: "\n"))

            """)
        return dn
    }

    /// Adds `member` to the group `groupDN`.
    func addMember(_ member: String, to groupDN: String) async throws {
        try await services.ldapModify("dn: \(groupDN)\nchangetype: modify\nadd: member\nmember: \(member)\n\n")
    }

    /// Removes `member` from the group `groupDN`.
    func removeMember(_ member: String, from groupDN: String) async throws {
        try await services.ldapModify("dn: \(groupDN)\nchangetype: modify\ndelete: member\nmember: \(member)\n\n")
    }
}

extension TestServices {
    func directorySettings(
        layout: DirectoryLayout = .openLDAP,
        uris: [String]? = nil,
        tls: DirectoryTLS = DirectoryTLS(),
        bindPassword: String? = nil,
        maximumGroupDepth: Int = 16,
        cacheTTL: Duration = .seconds(30),
        operationTimeout: Duration = .seconds(2)
    ) -> DirectorySettings {
        DirectorySettings(
            uris: uris ?? [ldapURI],
            baseDN: ldapBaseDN,
            bindDN: ldapBindDN,
            bindPassword: bindPassword ?? ldapPassword,
            tls: tls,
            layout: layout,
            connectTimeout: .seconds(2),
            operationTimeout: operationTimeout,
            cacheTTL: cacheTTL,
            maximumGroupDepth: maximumGroupDepth
        )
    }
}

/// Parses DNs in tests.
func dns(_ texts: String...) throws -> Set<DistinguishedName> {
    Set(try texts.map { try DistinguishedName($0) })
}

/// A clock tests move by hand.
final class ManualClock: @unchecked Sendable {
    private var current = ContinuousClock.now
    private let lock = NSLock()

    var now: ContinuousClock.Instant { lock.withLock { current } }

    func advance(by duration: Duration) {
        lock.withLock { current += duration }
    }
}
