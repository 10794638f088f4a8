import Foundation
import ORACore
import ORADirectory
import ORATestSupport
import Testing

@Suite("Operator login against slapd")
struct DirectoryLoginTests {
    let services: TestServices
    let client: DirectoryClient

    init() throws {
        services = try TestServices.fromEnvironment()
        client = DirectoryClient(settings: services.directorySettings())
    }

    @Test("a person logs in with their uid and gets a typed operator")
    func login() async throws {
        let person = try await client.authenticate(user: "lena.wolf", password: "ora-demo")
        #expect(
            person
                == Operator(
                    dn: "uid=lena.wolf,ou=People,dc=corp,dc=example", account: "lena.wolf", displayName: "Lena Wolf",
                    mail: "lena.wolf@corp.example", title: "Senior Support Engineer (Tier 2)",
                    department: "IT Service Desk"))
    }

    @Test("a wrong password, an unknown user and an empty password get the same answer")
    func rejected() async throws {
        for (user, password) in [("lena.wolf", "wrong"), ("no.such.person", "ora-demo"), ("lena.wolf", "")] {
            let error = await #expect(throws: DirectoryError.self) {
                try await client.authenticate(user: user, password: password)
            }
            #expect(error == .invalidCredentials, "\(user)")
        }
    }

    // Every demo account's password is "ora-demo", so a hostile name that widened the search to any single person
    // would log in. None may.
    @Test(
        "hostile user names log in as nobody",
        arguments: [
            "*", "*)(uid=*", "admin)(|(uid=*", "\\", "\u{0}", "lena.wolf\u{0}", "hannah.fischer*", "hannah.fisch*",
            "*fischer", "lena.wolf)(objectClass=*", "lena.wolf)(|(uid=*))", "(uid=lena.wolf)", "lena\\2ewolf",
            "lena.wolf\\", "hännah.fischer", "lena.wolf\n", String(repeating: "a", count: 10_000),
            "uid=lena.wolf,ou=People,dc=corp,dc=example",
        ]
    )
    func hostileNames(user: String) async throws {
        let error = await #expect(throws: DirectoryError.self) {
            try await client.authenticate(user: user, password: "ora-demo")
        }
        #expect(error == .invalidCredentials)
    }

    @Test("a DN with escaped characters, non-ASCII, and a password full of metacharacters")
    func escapedDN() async throws {
        let fixture = try await DirectoryFixture(services: services)
        let password = #"p@ss w'rd"$(id)`;|&*)(uid=*\\"#
        let dn = try await fixture.addPerson(
            rdn: #"cn=O'Brien\, Seán"#, uid: "sean.obrien", password: password, displayName: "Seán O'Brien")
        let group = try await fixture.addGroup("Escaped Helpers", members: [dn])

        let person = try await client.authenticate(user: "sean.obrien", password: password)
        #expect(try DistinguishedName(person.dn) == DistinguishedName(dn))
        #expect(person.displayName == "Seán O'Brien")
        #expect(try await client.groups(of: DistinguishedName(person.dn)).contains(DistinguishedName(group)))

        let error = await #expect(throws: DirectoryError.self) {
            try await client.authenticate(user: "sean.obrien", password: String(password.dropLast()))
        }
        #expect(error == .invalidCredentials)
    }

    @Test("several entries matching one name is a refusal, not a guess", arguments: [2, 3])
    func ambiguous(count: Int) async throws {
        let fixture = try await DirectoryFixture(services: services)
        for index in 0..<count {
            try await fixture.addPerson(rdn: "cn=Twin \(index)", uid: "twin", password: "ora-demo")
        }
        let error = await #expect(throws: DirectoryError.self) {
            try await client.authenticate(user: "twin", password: "ora-demo")
        }
        #expect(error == .invalidCredentials)
    }

    @Test("a refused service account makes login unavailable, not invalid")
    func disabledServiceAccount() async throws {
        let broken = DirectoryClient(settings: services.directorySettings(bindPassword: "not-the-password"))
        let error = await #expect(throws: DirectoryError.self) {
            try await broken.authenticate(user: "lena.wolf", password: "ora-demo")
        }
        guard case .unavailable = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }
    }

    @Test("an unreachable or silent directory makes login unavailable")
    func directoryDown() async throws {
        let hole = try BlackHoleListener()
        for uri in ["ldap://127.0.0.1:\(try Network.freePort())", "ldap://127.0.0.1:\(hole.port)"] {
            let down = DirectoryClient(settings: services.directorySettings(uris: [uri]))
            let error = await #expect(throws: DirectoryError.self) {
                try await down.authenticate(user: "lena.wolf", password: "ora-demo")
            }
            guard case .unavailable = error else {
                Issue.record("\(uri): expected unavailable, got \(String(describing: error))")
                continue
            }
        }
    }

    @Test("StartTLS and ldaps:// with the directory's CA")
    func tls() async throws {
        let startTLS = DirectoryClient(
            settings: services.directorySettings(tls: DirectoryTLS(startTLS: true, caFile: services.ldapCAFile)))
        #expect(try await startTLS.authenticate(user: "lena.wolf", password: "ora-demo").account == "lena.wolf")
        let ldaps = DirectoryClient(
            settings: services.directorySettings(
                uris: [services.ldapsURI], tls: DirectoryTLS(caFile: services.ldapCAFile)))
        #expect(try await ldaps.authenticate(user: "lena.wolf", password: "ora-demo").account == "lena.wolf")
    }

    @Test("a certificate not signed by a trusted CA is refused unless verification is explicitly off")
    func untrustedCertificate() async throws {
        let untrusted = DirectoryClient(settings: services.directorySettings(uris: [services.ldapsURI]))
        let error = await #expect(throws: DirectoryError.self) {
            try await untrusted.authenticate(user: "lena.wolf", password: "ora-demo")
        }
        guard case .unavailable = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }
        let startTLS = DirectoryClient(settings: services.directorySettings(tls: DirectoryTLS(startTLS: true)))
        await #expect(throws: DirectoryError.self) {
            try await startTLS.authenticate(user: "lena.wolf", password: "ora-demo")
        }
        let lab = DirectoryClient(
            settings: services.directorySettings(
                uris: [services.ldapsURI], tls: DirectoryTLS(verifyCertificates: false)))
        #expect(try await lab.authenticate(user: "lena.wolf", password: "ora-demo").account == "lena.wolf")
    }
}

/// Pure: libldap's escaping, without a server.
@Suite("Filter escaping")
struct LDAPFilterTests {
    @Test("filter values are escaped, never interpreted")
    func filterEscaping() {
        #expect(LDAPFilter.escape("*)(uid=*") == #"\2A\29\28uid=\2A"#)
        #expect(LDAPFilter.escape("a\\b\u{0}") == #"a\5Cb\00"#)
        // libldap escapes every byte outside ASCII too, which RFC 4515 allows and servers match as the same value.
        #expect(LDAPFilter.escape("Müller") == #"M\C3\BCller"#)
        #expect(LDAPFilter.escape("plain.name-1") == "plain.name-1")
        #expect(LDAPFilter.escape("") == "")
        #expect(
            LDAPFilter.fill("(&(objectClass=inetOrgPerson)(uid={user}))", with: ["user": "admin)(|(uid=*"])
                == #"(&(objectClass=inetOrgPerson)(uid=admin\29\28|\28uid=\2A))"#)
    }
}
