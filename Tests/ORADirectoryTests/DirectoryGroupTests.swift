import ORACore
import ORADirectory
import ORATestSupport
import Testing

@Suite("Group resolution and computers against slapd")
struct DirectoryGroupTests {
    let services: TestServices

    init() throws {
        services = try TestServices.fromEnvironment()
    }

    private func client(_ membership: DirectoryLayout.GroupMembership, depth: Int = 16) -> DirectoryClient {
        var layout = DirectoryLayout.openLDAP
        layout.groupMembership = membership
        return DirectoryClient(settings: services.directorySettings(layout: layout, maximumGroupDepth: depth))
    }

    @Test("nested groups are resolved transitively", arguments: [DirectoryLayout.GroupMembership.member, .memberOf])
    func nested(membership: DirectoryLayout.GroupMembership) async throws {
        let groups = try await client(membership).groups(
            of: DistinguishedName("UID=Hannah.Fischer,OU=People,DC=Corp,DC=Example"))
        #expect(
            groups
                == (try dns(
                    "cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example",
                    "cn=Helpdesk,ou=Groups,dc=corp,dc=example",
                    "cn=IT Staff,ou=Groups,dc=corp,dc=example",
                    "cn=All Staff,ou=Groups,dc=corp,dc=example")))
    }

    @Test("groupOfUniqueNames membership counts")
    func uniqueMember() async throws {
        let groups = try await client(.member).groups(
            of: DistinguishedName("uid=omar.haddad,ou=People,dc=corp,dc=example"))
        #expect(groups.contains(try DistinguishedName("cn=Field Support,ou=Groups,dc=corp,dc=example")))
        #expect(groups.contains(try DistinguishedName("cn=Helpdesk,ou=Groups,dc=corp,dc=example")))
    }

    @Test("a cycle between groups ends", arguments: [DirectoryLayout.GroupMembership.member, .memberOf])
    func cycle(membership: DirectoryLayout.GroupMembership) async throws {
        let fixture = try await DirectoryFixture(services: services)
        let person = try await fixture.addPerson(rdn: "uid=cyclist", uid: "cyclist", password: "x-password")
        let first = try await fixture.addGroup("Cycle A", members: [person])
        let second = try await fixture.addGroup("Cycle B", members: [first])
        let third = try await fixture.addGroup("Cycle C", members: [second])
        try await fixture.addMember(third, to: first)
        let groups = try await client(membership).groups(of: DistinguishedName(person))
        #expect(groups == (try dns(first, second, third)))
    }

    @Test(
        "nesting deeper than the bound is an error, not a shortened answer",
        arguments: [DirectoryLayout.GroupMembership.member, .memberOf])
    func depthBound(membership: DirectoryLayout.GroupMembership) async throws {
        let fixture = try await DirectoryFixture(services: services)
        var member = try await fixture.addPerson(rdn: "uid=deep", uid: "deep", password: "x-password")
        for level in 1...5 { member = try await fixture.addGroup("Level \(level)", members: [member]) }
        let person = try DistinguishedName("uid=deep,\(fixture.base)")
        let error = await #expect(throws: DirectoryError.self) {
            try await client(membership, depth: 4).groups(of: person)
        }
        guard case .failed(let reason) = error else {
            Issue.record("expected failed, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("deeper than 4 levels"))
        // Exactly at the bound is fine.
        #expect(try await client(membership, depth: 5).groups(of: person).count == 5)
    }

    @Test("a computer's DN, OU chain and nested groups")
    func computer() async throws {
        let client = client(.member)
        let kiosk = try #require(try await client.computer(named: "KIOSK-LOBBY1"))
        #expect(kiosk.name == "KIOSK-LOBBY1")
        #expect(kiosk.dn == (try DistinguishedName("cn=KIOSK-LOBBY1,ou=Kiosks,ou=Computers,dc=corp,dc=example")))
        #expect(
            kiosk.organizationalUnits == [
                try DistinguishedName("ou=Kiosks,ou=Computers,dc=corp,dc=example"),
                try DistinguishedName("ou=Computers,dc=corp,dc=example"),
            ])
        #expect(
            kiosk.groups
                == (try dns(
                    "cn=Lobby Kiosks,ou=Computer Groups,ou=Groups,dc=corp,dc=example",
                    "cn=Pilot Machines,ou=Computer Groups,ou=Groups,dc=corp,dc=example")))
        let workstation = try #require(try await client.computer(named: "ws-0101"))
        #expect(
            workstation.groups == (try dns("cn=Finance Workstations,ou=Computer Groups,ou=Groups,dc=corp,dc=example")))
    }

    @Test(
        "unknown and hostile machine names find nothing",
        arguments: ["NO-SUCH-PC", "*", "WS-*", "*)(cn=*", "", "WS-0101\u{0}"])
    func unknownComputer(name: String) async throws {
        #expect(try await client(.member).computer(named: name) == nil)
    }

    @Test("cached groups are reused within the TTL and looked up again after it")
    func cache() async throws {
        let fixture = try await DirectoryFixture(services: services)
        let person = try await fixture.addPerson(rdn: "uid=cached", uid: "cached", password: "x-password")
        let group = try await fixture.addGroup("Cached Group", members: [person])
        let clock = ManualClock()
        let client = DirectoryClient(
            settings: services.directorySettings(cacheTTL: .seconds(30)), now: { clock.now })
        let dn = try DistinguishedName(person)
        #expect(try await client.groups(of: dn) == (try dns(group)))

        try await fixture.addMember("cn=placeholder", to: group)
        try await fixture.removeMember(person, from: group)
        clock.advance(by: .seconds(29))
        #expect(try await client.groups(of: dn) == (try dns(group)), "within the TTL the cached answer holds")
        clock.advance(by: .seconds(2))
        #expect(try await client.groups(of: dn).isEmpty, "after the TTL the directory is asked again")
    }

    @Test("after the TTL a directory that is down gets no cached yes")
    func cacheDoesNotOutliveOutage() async throws {
        let directory = try await PrivateDirectory()
        let clock = ManualClock()
        var settings = services.directorySettings(
            uris: [directory.uri], bindPassword: directory.password, cacheTTL: .seconds(30))
        settings.bindDN = directory.bindDN
        let client = DirectoryClient(settings: settings, now: { clock.now })
        let dn = try DistinguishedName("uid=lena.wolf,ou=People,dc=corp,dc=example")
        #expect(
            try await client.groups(of: dn).contains(try DistinguishedName("cn=Helpdesk,ou=Groups,dc=corp,dc=example")))

        try await directory.stop()
        #expect(try await client.groups(of: dn).count == 4, "within the TTL")
        clock.advance(by: .seconds(31))
        let error = await #expect(throws: DirectoryError.self) { try await client.groups(of: dn) }
        guard case .unavailable = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }

        // Back up: the pooled connections are stale, and are replaced without the caller noticing.
        try await directory.start()
        #expect(try await client.groups(of: dn).count == 4)
        #expect(try await client.authenticate(user: "lena.wolf", password: "ora-demo").account == "lena.wolf")
    }
}

@Suite("Active Directory layout against slapd")
struct ActiveDirectoryLayoutTests {
    let client: DirectoryClient

    init() throws {
        let services = try TestServices.fromEnvironment()
        var layout = DirectoryLayout.activeDirectory
        // slapd has no in-chain matching rule; memberOf walks the same nesting.
        layout.groupMembership = .memberOf
        client = DirectoryClient(
            settings: DirectorySettings(
                uris: [services.ldapURI], baseDN: services.adBaseDN, bindDN: services.adBindDN,
                bindPassword: services.adPassword, layout: layout, connectTimeout: .seconds(2),
                operationTimeout: .seconds(2)))
    }

    @Test("log in by sAMAccountName or userPrincipalName", arguments: ["hfischer", "HFischer", "hfischer@ad.example"])
    func login(user: String) async throws {
        let person = try await client.authenticate(user: user, password: "ora-demo")
        #expect(person.account == "hfischer")
        #expect(person.displayName == "Hannah Fischer")
        #expect(try DistinguishedName(person.dn) == DistinguishedName("CN=Hannah Fischer,CN=Users,DC=ad,DC=example"))
        #expect(
            try await client.groups(of: DistinguishedName(person.dn))
                == (try dns(
                    "cn=Helpdesk Tier 1,cn=Users,dc=ad,dc=example", "cn=Helpdesk,cn=Users,dc=ad,dc=example")))
    }

    @Test("computers by sAMAccountName with its trailing $, groups nested")
    func computer() async throws {
        let laptop = try #require(try await client.computer(named: "LT-0042"))
        #expect(laptop.name == "LT-0042")
        #expect(
            laptop.organizationalUnits.first == (try DistinguishedName("ou=Laptops,ou=Example Corp,dc=ad,dc=example")))
        #expect(laptop.groups == (try dns("cn=Pilot Machines,cn=Users,dc=ad,dc=example")))
        let workstation = try #require(try await client.computer(named: "WS-0101"))
        #expect(
            workstation.groups
                == (try dns(
                    "cn=Finance Workstations,cn=Users,dc=ad,dc=example", "cn=Pilot Machines,cn=Users,dc=ad,dc=example"))
        )
        #expect(try await client.computer(named: "WS-0101$") == nil)
    }
}
