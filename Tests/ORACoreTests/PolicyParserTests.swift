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
            name: "ticket pattern too long",
            text: valid.replacingOccurrences(
                of: "    allow: view",
                with: "    allow: view\n    require: {ticket: '^INC\(String(repeating: "[0-9]", count: 64))$'}"),
            expected: [
                "policies[0].require.ticket: a ticket pattern may be at most 256 characters long; this one has 325"
            ]),
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
            name: "consent timeout too short",
            text: valid.replacingOccurrences(of: "    allow: view", with: "    allow: view\n    consent_timeout: 5s"),
            expected: ["p.yaml:9:22: policies[0].consent_timeout: must be between 10s and 10m"]),
        Broken(
            name: "session too long",
            text: valid.replacingOccurrences(of: "    allow: view", with: "    allow: view\n    max_duration: 2d"),
            expected: ["p.yaml:9:19: policies[0].max_duration: must be between 1m and 1d"]),
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
            name: "a deny policy answers no invitations",
            text: valid.replacingOccurrences(
                of: "    allow: view", with: "    effect: deny\n    invitations: {password: required}"),
            expected: ["policies[0].invitations: a deny policy answers no invitations"]),
        Broken(
            name: "an invitation opens no more than the policy allows",
            text: valid.replacingOccurrences(
                of: "    allow: view", with: "    allow: view\n    invitations: {allow: control}"),
            expected: [
                "policies[0].invitations.allow: an invitation cannot open more than the policy allows (view)"
            ]),
        Broken(
            name: "invitation lifetime and password",
            text: valid.replacingOccurrences(
                of: "    allow: view", with: "    allow: view\n    invitations: {max_lifetime: 8d, password: maybe}"),
            expected: [
                "policies[0].invitations.max_lifetime: must be between 1m and 7d",
                "policies[0].invitations.password: expected one of required, optional, found \"maybe\"",
            ]),
        Broken(
            name: "a mail domain that is not one",
            text: valid.replacingOccurrences(
                of: "    allow: view", with: "    allow: view\n    invitations: {email_domains: [\"@corp.example\"]}"),
            expected: [
                "policies[0].invitations.email_domains[0]: \"@corp.example\" is not a mail domain: each part of the domain"
            ]),
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
        #expect(again.policies == set.policies)
        #expect(again.roles == set.roles)
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

    static let tier2 = """
          - name: tier2
            description: Second line
            helpers: {groups: ["cn=Tier 2,ou=Groups,dc=corp,dc=example"]}
            targets: {ous: ["ou=Workstations,dc=corp,dc=example"], machines: [PC-1]}
            allow: view
            consent_timeout: 60s

        """

    @Test(
        "what changed in a policy, field by field, in the words of the file",
        arguments: [
            ("allow: view", "allow: control", ["allow: view → control"]),
            (
                "ous: [\"ou=Workstations,dc=corp,dc=example\"]",
                "ous: [\"ou=Workstations,dc=corp,dc=example\", \"ou=Kiosks,dc=corp,dc=example\"]",
                ["targets.ous: + ou=Kiosks,dc=corp,dc=example"]
            ),
            ("machines: [PC-1]", "machines: [PC-2]", ["targets.machines: − pc-1; + pc-2"]),
            (
                "Tier 2", "Tier 3",
                ["helpers.groups: − cn=Tier 2,ou=Groups,dc=corp,dc=example; + cn=Tier 3,ou=Groups,dc=corp,dc=example"]
            ),
            ("consent_timeout: 60s", "consent_timeout: 90s", ["consent_timeout: 1m → 1m30s"]),
            (
                "description: Second line", "description: Second line support",
                ["description: Second line → Second line support"]
            ),
            (
                "allow: view",
                "allow: view\n    require: {ticket: '^INC[0-9]{7}$'}\n    max_duration: 30m",
                ["require.ticket: none → ^INC[0-9]{7}$", "max_duration: 2h → 30m"]
            ),
            ("allow: view", "effect: deny", ["allow: view → deny"]),
            (
                "ous: [\"ou=Workstations,dc=corp,dc=example\"]",
                "ous: [{dn: \"ou=Workstations,dc=corp,dc=example\", scope: one}]",
                [
                    "targets.ous: − ou=Workstations,dc=corp,dc=example; + ou=Workstations,dc=corp,dc=example (one level)"
                ]
            ),
            (
                "machines: [PC-1]}",
                "machines: [PC-1], except: {ous: [\"ou=Kiosks,ou=Workstations,dc=corp,dc=example\"]}}",
                ["targets.except.ous: + ou=Kiosks,ou=Workstations,dc=corp,dc=example"]
            ),
            (
                "machines: [PC-1]}",
                "machines: [PC-1], except: {groups: [\"cn=VIP,dc=corp,dc=example\"], machines: [WS-7]}}",
                ["targets.except.groups: + cn=VIP,dc=corp,dc=example", "targets.except.machines: + ws-7"]
            ),
        ])
    func fields(before: String, after: String, expected: [String]) throws {
        let old = try Self.set(Self.tier2)
        let new = try Self.set(Self.tier2.replacingOccurrences(of: before, with: after))
        let changes = PolicyDiff.fieldChanges(from: old, to: new)
        #expect(changes.map(\.policy) == ["tier2"])
        #expect(changes.first?.changes.map(\.summary) == expected)
        #expect(PolicyDiff(from: old, to: new).changed == ["tier2"])
        // Nothing changed, nothing to say; a new or removed policy is not a field change.
        #expect(PolicyDiff.fieldChanges(from: old, to: old).isEmpty)
        #expect(PolicyDiff.fieldChanges(from: nil, to: new).isEmpty)
    }
}

@Suite("Policy sets written out and read back")
struct PolicyRoundTripTests {
    /// SplitMix64: a small generator with a fixed seed, so a failure can be replayed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var value = state
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
    }

    static let texts = [
        "Helpdesk", "Tier 2", "Müller, Klaus", "a+b", "quote \"q\"", "back\\slash", "#hash", "Ünïcödé", "x=y",
        "semi;colon",
        // Characters YAML does not allow as they are, or reads as line breaks or a byte order mark.
        "c1 \u{80}\u{9F}", "next\u{85}line", "line\u{2028}para\u{2029}", "bom\u{FEFF}", "not\u{FFFE}\u{FFFF}",
        "del\u{7F}bell\u{7}",
    ]
    static let patterns = ["^INC[0-9]{7}$", "^(CHG|INC)\\d+$", "[A-Z]{3}-\\d{4}", "^\\S+$"]
    static let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]

    static func randomSet(_ generator: inout Generator) throws -> PolicySet {
        func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &generator)] }
        func dn(_ kind: String) throws -> DistinguishedName {
            try DistinguishedName("cn=\(DistinguishedName.escape(pick(texts))),ou=\(kind),dc=corp,dc=example")
        }
        var policies: [Policy] = []
        for index in 0..<Int.random(in: 1...12, using: &generator) {
            let deny = Int.random(in: 0..<5, using: &generator) == 0
            var targets = Policy.Targets()
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: targets.any = true
            case 1: targets.organizationalUnits = [try dn("Computers"), try dn("Laptops")]
            case 2: targets.groups = [try dn("Computer Groups")]
            default: targets.machines = ["PC-\(index)", "ws-\(Int.random(in: 0..<100, using: &generator))"]
            }
            if Bool.random(using: &generator) { targets.oneLevelUnits = [try dn("Branch")] }
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: targets.except.organizationalUnits = [try dn("Kiosks")]
            case 1: targets.except.oneLevelUnits = [try dn("Servers")]
            case 2: targets.except.groups = [try dn("VIP Machines")]
            default: targets.except.machines = ["KIOSK-\(index)"]
            }
            let helpers =
                Bool.random(using: &generator) ? Policy.Helpers(any: true) : Policy.Helpers(groups: [try dn("Groups")])
            let schedule: Schedule? =
                Bool.random(using: &generator)
                ? Schedule(
                    timeZone: TimeZone(identifier: pick(zones))!,
                    days: Set(Schedule.Day.allCases.filter { _ in Bool.random(using: &generator) } + [.mon]),
                    startMinute: Int.random(in: 0..<1_440, using: &generator) / 15 * 15,
                    endMinute: Int.random(in: 1...96, using: &generator) * 15)
                : nil
            guard schedule.map({ $0.startMinute != $0.endMinute }) ?? true else { continue }
            let access = pick(AccessMode.allCases)
            var invitations = Policy.InvitationRules()
            if !deny, Bool.random(using: &generator) {
                invitations.answer = Bool.random(using: &generator)
                invitations.access =
                    Bool.random(using: &generator) ? pick(AccessMode.allCases.filter { $0 <= access }) : nil
                invitations.maximumLifetime = .seconds(60 * Int.random(in: 1...10_080, using: &generator))
                invitations.passwordRequired = Bool.random(using: &generator)
                invitations.mailDomains = Bool.random(using: &generator) ? ["partner.example", "corp.example"] : []
            }
            policies.append(
                Policy(
                    name: "policy-\(index)-\(pick(["a", "b.c", "d_e"]))",
                    description: Bool.random(using: &generator) ? pick(texts) + "\nsecond line" : nil,
                    location: SourceLocation(file: "", line: 0, column: 0),
                    effect: deny ? .deny : .allow(access),
                    helpers: helpers,
                    targets: targets,
                    ticketPattern: !deny && Bool.random(using: &generator) ? pick(patterns) : nil,
                    schedule: schedule,
                    consentTimeout: .seconds(Int.random(in: 10...600, using: &generator)),
                    maximumDuration: .seconds(Int.random(in: 60...86_400, using: &generator)),
                    invitations: invitations))
        }
        return PolicySet(
            policies: policies,
            roles: RoleAssignments(
                administrators: [try dn("Groups")], auditors: Bool.random(using: &generator) ? [try dn("Groups")] : []))
    }

    static func withoutLocations(_ policies: [Policy]) -> [Policy] {
        policies.map { policy in
            var copy = policy
            copy.location = SourceLocation(file: "", line: 0, column: 0)
            return copy
        }
    }

    @Test("random valid sets survive being written out and parsed again", arguments: 0..<200)
    func roundTrip(seed: UInt64) throws {
        var generator = Generator(state: seed)
        let set = try Self.randomSet(&generator)
        let parsed: PolicySet
        do {
            parsed = try PolicyParser.parse([PolicySet.File(name: "generated.yaml", content: set.yaml)])
        } catch {
            Issue.record("seed \(seed): \(error)\n\(set.yaml)")
            return
        }
        #expect(Self.withoutLocations(parsed.policies) == Self.withoutLocations(set.policies), "seed \(seed)")
        #expect(parsed.roles == set.roles)
    }
}
