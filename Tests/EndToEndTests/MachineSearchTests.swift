import Foundation
import ORAClient
import ORACore
import ORATestSupport
import Testing

@Suite("Helpers search enrolled machines by name, OU and group, a page at a time", .serialized)
struct MachineSearchTests {
    static let computers = "ou=Computers,dc=corp,dc=example"
    static let workstations = "ou=Workstations,ou=Computers,dc=corp,dc=example"
    static let pilot = "cn=Pilot Machines,ou=Computer Groups,ou=Groups,dc=corp,dc=example"

    /// A server with the offer tests' policy (tier 2 controls workstations, tier 1 views them) and five machines
    /// enrolled from three OUs.
    static func enrolled() async throws -> OfferSetup {
        let setup = try await OfferSetup.make(
            enrolling: "WS-0101", configuration: OfferFixtures.configuration + "\n  directory_refresh_interval: 10s",
            directoryExtra: "  cache: { ttl: 0s }")
        try await setup.enroll(["WS-0102", "WS-0201", "LT-0042", "KIOSK-LOBBY1"])
        return setup
    }

    static func search(
        _ query: String, on server: RunningServer, token: String
    ) async throws -> Schemas.HelperMachinePage {
        let answer = try await HTTP.get(server.base + "/api/v1/machines" + query, token: token)
        #expect(answer.status == 200, "\(query): \(answer.body)")
        return try #require(answer.json(Schemas.HelperMachinePage.self), "\(answer.body)")
    }

    @Test("name, OU (any spelling, any depth), nested group and access narrow the list; pages follow by name")
    func searching() async throws {
        let setup = try await Self.enrolled()
        let server = setup.server
        let lena = try await server.token("lena.wolf")
        func names(_ query: String) async throws -> [String] {
            try await Self.search(query, on: server, token: lena).machines.map(\.name)
        }

        let all = try await Self.search("", on: server, token: lena)
        #expect(all.machines.map(\.name) == ["kiosk-lobby1", "lt-0042", "ws-0101", "ws-0102", "ws-0201"])
        #expect(all.matched == 5)
        #expect(all.next == nil)
        // Each machine carries its directory facts from enrollment, and what lena (tier 2) may do by the policy.
        let workstation = try #require(all.machines.first { $0.name == "ws-0102" })
        #expect(workstation.computerDn == "cn=WS-0102,ou=Workstations,ou=Computers,dc=corp,dc=example")
        #expect(workstation.directoryCheckedAt != nil)
        #expect(workstation.access == .control)
        #expect(workstation.explanation.contains("tier2-control-workstations"), "\(workstation.explanation)")
        let kiosk = try #require(all.machines.first { $0.name == "kiosk-lobby1" })
        #expect(kiosk.access == Schemas.HelperMachine.AccessPayload.none)
        #expect(!kiosk.online)

        #expect(try await names("?q=WS-02") == ["ws-0201"])
        #expect(try await names("?q=0") == ["lt-0042", "ws-0101", "ws-0102", "ws-0201"])
        #expect(try await names("?q=lobby") == ["kiosk-lobby1"])
        let ou = Self.workstations.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try await names("?ou=\(ou)") == ["ws-0101", "ws-0102", "ws-0201"])
        // A DN compares as the directory compares it: case and spaces after commas do not matter; a subtree
        // includes the OUs below it.
        let spelt = "OU=workstations, OU=Computers, DC=corp, DC=example"
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try await names("?ou=\(spelt)") == ["ws-0101", "ws-0102", "ws-0201"])
        let computers = Self.computers.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try await Self.search("?ou=\(computers)", on: server, token: lena).matched == 5)
        // Pilot Machines nests Lobby Kiosks.
        let pilot = Self.pilot.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try await names("?group=\(pilot)") == ["kiosk-lobby1", "lt-0042", "ws-0201"])
        #expect(try await names("?group=\(pilot)&ou=\(ou)") == ["ws-0201"])
        // Only the machines where lena may help; `matched` still counts every match.
        let helpable = try await Self.search("?access=view", on: server, token: lena)
        #expect(helpable.machines.map(\.name) == ["ws-0101", "ws-0102", "ws-0201"])
        #expect(helpable.matched == 5)
        let tom = try await server.token("tom.berger")
        #expect(try await Self.search("?access=control", on: server, token: tom).machines.isEmpty)
        #expect(try await Self.search("?access=view", on: server, token: tom).machines.count == 3)
        #expect(try await names("?online=true").isEmpty)

        // Pages by name: the next page starts after the last name of the one before.
        let first = try await Self.search("?limit=2", on: server, token: lena)
        #expect(first.machines.map(\.name) == ["kiosk-lobby1", "lt-0042"])
        #expect(first.next == "lt-0042")
        let second = try await Self.search("?limit=2&after=lt-0042", on: server, token: lena)
        #expect(second.machines.map(\.name) == ["ws-0101", "ws-0102"])
        let last = try await Self.search("?limit=2&after=\(try #require(second.next))", on: server, token: lena)
        #expect(last.machines.map(\.name) == ["ws-0201"])
        #expect(last.next == nil)
        let helpablePage = try await Self.search("?access=view&limit=1&after=ws-0101", on: server, token: lena)
        #expect(helpablePage.machines.map(\.name) == ["ws-0102"])
        #expect(helpablePage.next == "ws-0102")

        // The OUs and groups to search by, with how many machines lie in each; no domain component.
        let scopes = try #require(
            try await HTTP.get(server.base + "/api/v1/machines/scopes", token: lena).json(Schemas.MachineScopes.self))
        let containers = Dictionary(uniqueKeysWithValues: scopes.containers.map { ($0.dn, $0.machines) })
        #expect(
            containers == [
                "ou=Computers,dc=corp,dc=example": 5, "ou=Workstations,ou=Computers,dc=corp,dc=example": 3,
                "ou=Laptops,ou=Computers,dc=corp,dc=example": 1, "ou=Kiosks,ou=Computers,dc=corp,dc=example": 1,
            ])
        let groups = Dictionary(uniqueKeysWithValues: scopes.groups.map { ($0.dn, $0.machines) })
        #expect(groups[Self.pilot] == 3)
        #expect(groups["cn=Lobby Kiosks,ou=Computer Groups,ou=Groups,dc=corp,dc=example"] == 1)
        #expect(groups["cn=Finance Workstations,ou=Computer Groups,ou=Groups,dc=corp,dc=example"] == 2)

        // The command line pages the same search.
        let cli = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let listed = await cli.run("machines", "ws", "--limit", "2")
        #expect(listed.status == 0, "\(listed.standardError)")
        #expect(listed.standardOutput.contains("ws-0101  offline  control"), "\(listed.standardOutput)")
        #expect(listed.standardOutput.contains("2 shown of 3 that match; more with --after ws-0102 or --all"))
        let every = await cli.run("machines", "--group", Self.pilot, "--all")
        #expect(every.standardOutput.split(separator: "\n").count == 3, "\(every.standardOutput)")
    }

    @Test("each bad parameter is refused with 400 naming it")
    func badParameters() async throws {
        let server = try await RunningServer()
        let token = try await server.token("lena.wolf")
        let cases: [(String, String)] = [
            ("?limit=0", "limit must be a whole number from 1 to 500, not \"0\""),
            ("?limit=501", "limit must be a whole number from 1 to 500"),
            ("?ou=Workstations", "ou must be a distinguished name such as ou=Workstations,dc=corp,dc=example"),
            ("?group=%3DKiosks", "group must be a distinguished name"),
            ("?access=admin", "access must be one of view, control, not \"admin\""),
            ("?online=yes", "online must be true or false, not \"yes\""),
            ("?q=a%07b", "q must be at most 200 characters without control characters"),
            ("?colour=red", "unknown query parameter \"colour\""),
            ("?q=a&q=b", "q is given more than once"),
        ]
        for (query, message) in cases {
            let answer = try await HTTP.get(server.base + "/api/v1/machines" + query, token: token)
            #expect(answer.status == 400, "\(query): \(answer.body)")
            #expect(answer.refusal?.error == "invalid_parameter", "\(query)")
            #expect(answer.refusal?.message.contains(message) == true, "\(query): \(answer.body)")
        }
        #expect(try await HTTP.get(server.base + "/api/v1/machines").status == 401)
        #expect(try await HTTP.get(server.base + "/api/v1/machines/scopes").status == 401)
    }

    @Test("a change in the directory reaches the search within the refresh interval, without an offer")
    func refresh() async throws {
        let setup = try await Self.enrolled()
        let server = setup.server
        let lena = try await server.token("lena.wolf")
        let finance = "cn=Finance Workstations,ou=Computer Groups,ou=Groups,dc=corp,dc=example"
        let query = "?group=" + finance.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try await Self.search(query, on: server, token: lena).machines.map(\.name) == ["ws-0101", "ws-0102"])
        try await server.directory.modify(
            """
            dn: \(finance)
            changetype: modify
            add: member
            member: cn=LT-0042,ou=Laptops,ou=Computers,dc=corp,dc=example
            """)
        // Looked up again within the interval (10 s here) and the next round after it.
        let expected = ["lt-0042", "ws-0101", "ws-0102"]
        let deadline = ContinuousClock.now + .seconds(60)
        var found: [String] = []
        while ContinuousClock.now < deadline {
            found = try await Self.search(query, on: server, token: lena).machines.map(\.name)
            if found == expected { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(found == expected)
        #expect(
            try await server.sql("SELECT directory_checked_at > enrolled_at FROM machines WHERE name = 'lt-0042'")
                == "t")
    }
}
