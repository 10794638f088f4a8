import ORADirectory
import ORATestSupport
import Testing

/// The libldap wrapper against the real slapd that `Deploy/dev/test` starts.
@Suite("LDAP connection against slapd")
struct DirectoryClientTests {
    let services: TestServices
    let client: DirectoryClient

    init() throws {
        services = try TestServices.fromEnvironment()
        client = DirectoryClient(settings: services.directorySettings())
    }

    private func settings(uris: [String], operationTimeout: Duration = .seconds(2)) -> DirectorySettings {
        services.directorySettings(uris: uris, operationTimeout: operationTimeout)
    }

    @Test("the service account binds and reads the base entry")
    func reachable() async throws {
        try await client.checkReachable()
    }

    @Test("a search returns the entries and attributes of the demo directory")
    func search() async throws {
        let entries = try await client.search(
            base: "ou=People,\(services.ldapBaseDN)",
            scope: .subtree,
            filter: "(uid=hannah.fischer)",
            attributes: ["cn", "mail", "memberOf"]
        )
        let entry = try #require(entries.first)
        #expect(entries.count == 1)
        #expect(entry.dn == "uid=hannah.fischer,ou=People,dc=corp,dc=example")
        #expect(entry.value("cn") == "Hannah Fischer")
        #expect(entry.value("MAIL") == "hannah.fischer@corp.example")
        #expect(entry.values("memberOf").contains("cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"))
    }

    @Test("non-ASCII values come back as UTF-8")
    func utf8Values() async throws {
        let entries = try await client.search(
            base: services.ldapBaseDN, scope: .subtree, filter: "(uid=klaus.mueller)", attributes: ["cn", "sn"])
        #expect(entries.first?.value("sn") == "Müller")
        #expect(entries.first?.value("cn") == "Müller, Klaus")
    }

    @Test("a search for nothing returns no entries")
    func emptySearch() async throws {
        let entries = try await client.search(
            base: services.ldapBaseDN, scope: .subtree, filter: "(uid=nobody-by-this-name)", attributes: [])
        #expect(entries.isEmpty)
    }

    @Test("a person binds with the right password")
    func personBinds() async throws {
        try await client.bind(dn: "uid=lena.wolf,ou=People,dc=corp,dc=example", password: "ora-demo")
    }

    @Test("a wrong password is invalid credentials")
    func wrongPassword() async throws {
        let error = await #expect(throws: LDAPError.self) {
            try await client.bind(dn: "uid=lena.wolf,ou=People,dc=corp,dc=example", password: "not-her-password")
        }
        #expect(error == .invalidCredentials)
        #expect(error?.isUnavailable == false)
    }

    @Test("a wrong service account password makes the directory check fail with invalid credentials")
    func wrongServicePassword() async throws {
        var settings = settings(uris: [services.ldapURI])
        settings.bindPassword = "wrong"
        let error = await #expect(throws: LDAPError.self) {
            try await DirectoryClient(settings: settings).checkReachable()
        }
        #expect(error == .invalidCredentials)
    }

    @Test("a server that refuses connections is unreachable")
    func unreachable() async throws {
        let port = try Network.freePort()
        let uri = "ldap://127.0.0.1:\(port)"
        let error = await #expect(throws: LDAPError.self) {
            try await DirectoryClient(settings: settings(uris: [uri])).checkReachable()
        }
        guard case .serverUnreachable(let uris, _) = error else {
            Issue.record("expected serverUnreachable, got \(String(describing: error))")
            return
        }
        #expect(uris == uri)
        #expect(error?.isUnavailable == true)
    }

    @Test("a server that accepts the connection but never answers times out")
    func timeout() async throws {
        let hole = try BlackHoleListener()
        let error = await #expect(throws: LDAPError.self) {
            try await DirectoryClient(
                settings: settings(uris: ["ldap://127.0.0.1:\(hole.port)"], operationTimeout: .seconds(1))
            )
            .checkReachable()
        }
        guard case .timedOut(let operation, let after) = error else {
            Issue.record("expected timedOut, got \(String(describing: error))")
            return
        }
        #expect(operation == "bind")
        #expect(after == .seconds(1))
        #expect(error?.isUnavailable == true)
    }

    @Test("the second URI is used when the first is down")
    func failover() async throws {
        let port = try Network.freePort()
        try await DirectoryClient(settings: settings(uris: ["ldap://127.0.0.1:\(port)", services.ldapURI]))
            .checkReachable()
    }

    @Test("a base DN the account cannot see fails the directory check")
    func missingBase() async throws {
        var settings = settings(uris: [services.ldapURI])
        settings.baseDN = "ou=Nowhere,dc=corp,dc=example"
        let error = await #expect(throws: LDAPError.self) {
            try await DirectoryClient(settings: settings).checkReachable()
        }
        guard case .operationFailed(_, let code, _) = error else {
            Issue.record("expected operationFailed, got \(String(describing: error))")
            return
        }
        #expect(code == 32)  // noSuchObject
    }

    @Test("a malformed URI is rejected before any connection")
    func invalidURI() async throws {
        let error = await #expect(throws: LDAPError.self) {
            try await DirectoryClient(settings: settings(uris: ["ldap://[not-a-uri"])).checkReachable()
        }
        #expect(error == .invalidURI("ldap://[not-a-uri"))
    }
}
