import Foundation
import ORACore
import Testing

@Suite("Policy files")
struct PolicyParserTests {
    static let valid = """
        policies:
          - name: tier1-view
            description: First-line support may view workstations.
            helpers:
              groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"]
            targets:
              ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"]
            allow: view
        roles:
          administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
        """

    private func errors(_ files: [String: String]) -> [String] {
        do {
            _ = try PolicyParser.parse(files.map { PolicySet.File(name: $0.key, content: $0.value) })
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test("a valid file parses into policies and roles")
    func valid() throws {
        let set = try PolicyParser.parse([PolicySet.File(name: "a.yaml", content: Self.valid)])
        let policy = try #require(set.policies.first)
        #expect(policy.name == "tier1-view")
        #expect(policy.effect == .allow(.view))
        #expect(policy.location == SourceLocation(file: "a.yaml", line: 2, column: 5))
        #expect(policy.consentTimeout == .seconds(60))
        #expect(set.roles.administrators == [try DistinguishedName("cn=ra admins,ou=groups,dc=corp,dc=example")])
        #expect(set.contentHash.count == 64)
    }

    struct Broken: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var expected: [String]
        var testDescription: String { name }
    }

    static let broken: [Broken] = [
        Broken(
            name: "unknown key",
            text: valid.replacingOccurrences(of: "    allow: view", with: "    allow: view\n    colour: red"),
            expected: ["p.yaml:9:5: policies[0].colour: unknown setting"]),
        Broken(
            name: "consent cannot be switched off",
            text: valid.replacingOccurrences(of: "    allow: view", with: "    allow: view\n    consent: false"),
            expected: [
                "p.yaml:9:5: policies[0].consent: consent cannot be configured: the person at the machine is always asked"
            ]),
        Broken(
            name: "bad DN",
            text: valid.replacingOccurrences(of: "cn=Helpdesk Tier 1,ou=Groups", with: "cn=Helpdesk Tier 1,,ou=Groups"),
            expected: [
                "p.yaml:5:16: policies[0].helpers.groups[0]: not a valid DN (an empty part between separators at position 20)"
            ]),
        Broken(
            name: "bad regex",
            text: valid.replacingOccurrences(
                of: "    allow: view", with: "    allow: view\n    require: {ticket: '^INC[0-9'}"),
            expected: ["policies[0].require.ticket: not a valid regular expression: ^INC[0-9"]),
        Broken(
            name: "bad time zone",
            text: valid.replacingOccurrences(
                of: "    allow: view",
                with: "    allow: view\n    schedule: {timezone: Mars/Olympus, days: [mon], hours: \"08:00-17:00\"}"),
            expected: ["policies[0].schedule.timezone: unknown time zone \"Mars/Olympus\""]),
        Broken(
            name: "bad hours",
            text: valid.replacingOccurrences(
                of: "    allow: view",
                with: "    allow: view\n    schedule: {timezone: UTC, days: [mon], hours: \"8-17\"}"),
            expected: ["policies[0].schedule.hours: expected a window such as 07:00-19:00"]),
        Broken(
            name: "bad access", text: valid.replacingOccurrences(of: "allow: view", with: "allow: full"),
            expected: ["p.yaml:8:12: policies[0].allow: expected one of view, control, found \"full\""]),
        Broken(
            name: "allow missing", text: valid.replacingOccurrences(of: "    allow: view\n", with: ""),
            expected: ["policies[0].allow: is required for an allow policy"]),
        Broken(
            name: "empty name", text: valid.replacingOccurrences(of: "name: tier1-view", with: "name: \"\""),
            expected: ["p.yaml:2:11: policies[0].name: must not be empty"]),
        Broken(
            name: "no helpers",
            text: valid.replacingOccurrences(
                of: "      groups: [\"cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example\"]\n", with: "      any: false\n"),
            expected: ["policies[0].helpers: names no helpers"]),
        Broken(
            name: "deny with an access",
            text: valid.replacingOccurrences(of: "    allow: view", with: "    effect: deny\n    allow: view"),
            expected: ["policies[0].allow: a deny policy allows nothing"]),
        Broken(
            name: "syntax error", text: "policies:\n  - name: [oops\n",
            expected: ["p.yaml:3:1: not valid YAML"]),
        Broken(
            name: "several mistakes are all reported",
            text: valid.replacingOccurrences(of: "allow: view", with: "allow: full")
                .replacingOccurrences(of: "    description:", with: "    descripton:"),
            expected: ["policies[0].allow: expected one of view, control", "policies[0].descripton: unknown setting"]),
    ]

    @Test("each broken file gets its message and position", arguments: broken)
    func brokenFile(_ broken: Broken) {
        let found = errors(["p.yaml": broken.text])
        #expect(found.count == broken.expected.count, "\(found)")
        for expected in broken.expected {
            #expect(found.contains { $0.contains(expected) }, "expected \(expected) in \(found)")
        }
    }

    @Test("a name used in two files is reported with where it was first used")
    func duplicateAcrossFiles() {
        let found = errors([
            "a.yaml": Self.valid,
            "b.yaml": Self.valid.replacingOccurrences(
                of: "roles:\n  administrators: [\"cn=RA Admins,ou=Groups,dc=corp,dc=example\"]", with: ""),
        ])
        #expect(found == ["b.yaml:2:11: policies[0].name: the name \"tier1-view\" is already used at a.yaml:2:11"])
    }

    @Test("parsing the stored files of a set again gives the same set")
    func roundTrip() throws {
        let set = try PolicyParser.parse([PolicySet.File(name: "a.yaml", content: Self.valid)])
        let again = try PolicyParser.parse(set.files)
        #expect(again.policies.map(\.name) == set.policies.map(\.name))
        #expect(again.contentHash == set.contentHash)
    }
}

@Suite("Policy differences")
struct PolicyDiffTests {
    static func set(_ policies: String, file: String = "a.yaml") throws -> PolicySet {
        try PolicyParser.parse([PolicySet.File(name: file, content: "policies:\n" + policies)])
    }

    static let view = """
          - name: one
            helpers: {any: true}
            targets: {machines: [PC-1]}
            allow: view

        """
    static let other = """
          - name: two
            helpers: {any: true}
            targets: {machines: [PC-2]}
            allow: view

        """

    @Test("added, removed and changed policies; moving a policy is no change")
    func diff() throws {
        let old = try Self.set(Self.view + Self.other)
        let moved = try Self.set(Self.other + Self.view, file: "b.yaml")
        #expect(PolicyDiff(from: old, to: moved).isEmpty)
        let new = try Self.set(
            Self.view.replacingOccurrences(of: "allow: view", with: "allow: control") + """
                  - name: three
                    helpers: {any: true}
                    targets: {machines: [PC-3]}
                    allow: view

                """)
        let diff = PolicyDiff(from: old, to: new)
        #expect(diff.lines == ["+ three", "- two", "~ one"])
        #expect(PolicyDiff(from: nil, to: old).added == ["one", "two"])
    }
}
