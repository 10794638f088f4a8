import Foundation
import ORACore
import Testing

@Suite("Policy decisions")
struct PolicyEvaluatorTests {
    static let tier1 = try! DistinguishedName("cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example")
    static let tier2 = try! DistinguishedName("cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example")
    static let helpdesk = try! DistinguishedName("cn=Helpdesk,ou=Groups,dc=corp,dc=example")
    static let kiosks = try! DistinguishedName("cn=Lobby Kiosks,ou=Computer Groups,ou=Groups,dc=corp,dc=example")
    static let workstation = MachineFacts(
        name: "WS-0101", dn: try! DistinguishedName("cn=WS-0101,ou=Workstations,ou=Computers,dc=corp,dc=example"),
        groups: [])
    static let server = MachineFacts(
        name: "SRV-FILE01", dn: try! DistinguishedName("cn=SRV-FILE01,ou=Servers,ou=Computers,dc=corp,dc=example"),
        groups: [])
    static let kiosk = MachineFacts(
        name: "KIOSK-LOBBY1", dn: try! DistinguishedName("cn=KIOSK-LOBBY1,ou=Kiosks,ou=Computers,dc=corp,dc=example"),
        groups: [kiosks])

    static let set: PolicySet = {
        let files = [
            PolicySet.File(
                name: "helpdesk.yaml",
                content: """
                    policies:
                      - name: tier1-view
                        helpers: {groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"]}
                        targets: {ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"]}
                        allow: view
                        require: {ticket: '^INC[0-9]{7}$'}
                        schedule: {timezone: Europe/Berlin, days: [mon, tue, wed, thu, fri], hours: "07:00-19:00"}
                        consent_timeout: 45s
                      - name: tier2-control
                        helpers: {groups: ["cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"]}
                        targets: {ous: ["OU=Computers,DC=corp,DC=example"]}
                        allow: control
                        max_duration: 4h
                      - name: helpdesk-kiosks
                        helpers: {groups: ["cn=Helpdesk,ou=Groups,dc=corp,dc=example"]}
                        targets: {groups: ["cn=Lobby Kiosks,ou=Computer Groups,ou=Groups,dc=corp,dc=example"]}
                        allow: view
                        consent_timeout: 30s
                      - name: night-shift
                        helpers: {groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"]}
                        targets: {machines: [ws-0101]}
                        allow: view
                        schedule: {timezone: UTC, days: [fri], hours: "22:00-06:00"}
                      - name: never-servers
                        effect: deny
                        helpers: {any: true}
                        targets: {ous: ["ou=Servers,ou=Computers,dc=corp,dc=example"]}
                    """)
        ]
        return try! PolicyParser.parse(files)
    }()

    /// 2026-11-23 is a Monday. Berlin is UTC+1 in November.
    static func date(_ text: String) -> Date {
        ISO8601DateFormatter().date(from: text)!
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var groups: Set<DistinguishedName>
        var machine: MachineFacts
        var mode: AccessMode
        var ticket: String?
        var at: String
        var explanation: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "tier 1 views a workstation with a ticket in business hours", groups: [tier1, helpdesk],
            machine: workstation, mode: .view, ticket: "INC0012345", at: "2026-11-23T09:00:00Z",
            explanation: "allowed (view) by \"tier1-view\""),
        Case(
            name: "tier 1 may not take control", groups: [tier1, helpdesk], machine: workstation, mode: .control,
            ticket: "INC0012345", at: "2026-11-23T09:00:00Z",
            explanation: "denied: \"tier1-view\" allows view only"),
        Case(
            name: "no ticket", groups: [tier1], machine: workstation, mode: .view, ticket: nil,
            at: "2026-11-23T09:00:00Z", explanation: "denied: a ticket is required by \"tier1-view\""),
        Case(
            name: "ticket of the wrong form", groups: [tier1], machine: workstation, mode: .view,
            ticket: "INC12345", at: "2026-11-23T09:00:00Z",
            explanation: "denied: the ticket does not have the form ^INC[0-9]{7}$ required by \"tier1-view\""),
        Case(
            name: "a ticket with a matching prefix and more is refused", groups: [tier1], machine: workstation,
            mode: .view, ticket: "INC0012345; DROP", at: "2026-11-23T09:00:00Z",
            explanation: "denied: the ticket does not have the form ^INC[0-9]{7}$ required by \"tier1-view\""),
        Case(
            name: "opening minute in Berlin is inside", groups: [tier1], machine: workstation, mode: .view,
            ticket: "INC0012345", at: "2026-11-23T06:00:00Z", explanation: "allowed (view) by \"tier1-view\""),
        Case(
            name: "closing minute in Berlin is outside", groups: [tier1], machine: workstation, mode: .view,
            ticket: "INC0012345", at: "2026-11-23T18:00:00Z",
            explanation: "denied: outside the schedule of \"tier1-view\", \"night-shift\""),
        Case(
            name: "Saturday is outside", groups: [tier1], machine: workstation, mode: .view, ticket: "INC0012345",
            at: "2026-11-28T10:00:00Z", explanation: "denied: outside the schedule of \"tier1-view\", \"night-shift\""),
        Case(
            name: "summer time: 05:30 UTC is 07:30 in Berlin", groups: [tier1], machine: workstation, mode: .view,
            ticket: "INC0012345", at: "2026-07-06T05:30:00Z", explanation: "allowed (view) by \"tier1-view\""),
        Case(
            name: "the night window belongs to the evening it opens", groups: [tier1], machine: workstation,
            mode: .view, ticket: nil, at: "2026-11-28T03:00:00Z", explanation: "allowed (view) by \"night-shift\""),
        Case(
            name: "midnight crossing does not reach the next night", groups: [tier1], machine: workstation,
            mode: .view, ticket: nil, at: "2026-11-29T03:00:00Z",
            explanation: "denied: outside the schedule of \"tier1-view\", \"night-shift\""),
        Case(
            name: "tier 2 controls any computer below ou=Computers", groups: [tier2, helpdesk], machine: workstation,
            mode: .control, ticket: nil, at: "2026-11-28T23:00:00Z",
            explanation: "allowed (control) by \"tier2-control\""),
        Case(
            name: "control implies view", groups: [tier2], machine: workstation, mode: .view, ticket: nil,
            at: "2026-11-23T09:00:00Z", explanation: "allowed (view) by \"tier2-control\""),
        Case(
            name: "deny wins over allow", groups: [tier2], machine: server, mode: .view, ticket: nil,
            at: "2026-11-23T09:00:00Z", explanation: "denied by \"never-servers\""),
        Case(
            name: "computer groups, via a nested helper group", groups: [tier1, helpdesk], machine: kiosk,
            mode: .view, ticket: nil, at: "2026-11-23T09:00:00Z",
            explanation: "allowed (view) by \"helpdesk-kiosks\""),
        Case(
            name: "default deny", groups: [try! DistinguishedName("cn=All Staff,ou=Groups,dc=corp,dc=example")],
            machine: workstation, mode: .view, ticket: "INC0012345", at: "2026-11-23T09:00:00Z",
            explanation: "denied: no policy allows this operator to offer help to this machine"),
    ]

    @Test("decisions and their explanations", arguments: cases)
    func decide(_ testCase: Case) {
        let decision = Self.set.decide(
            operatorGroups: testCase.groups, machine: testCase.machine, mode: testCase.mode, ticket: testCase.ticket,
            at: Self.date(testCase.at))
        #expect(decision.explanation == testCase.explanation)
        #expect(decision.isAllowed == testCase.explanation.hasPrefix("allowed"))
    }

    @Test("a deny policy outside its schedule is no policy at all: default deny")
    func scheduledDenyOnly() throws {
        let set = try PolicyParser.parse([
            PolicySet.File(
                name: "freeze.yaml",
                content: """
                    policies:
                      - name: change-freeze
                        effect: deny
                        helpers: {any: true}
                        targets: {any: true}
                        schedule: {timezone: UTC, days: [sat, sun], hours: "00:00-24:00"}
                    """)
        ])
        let weekday = set.decide(
            operatorGroups: [Self.tier1], machine: Self.workstation, mode: .view, ticket: nil,
            at: Self.date("2026-11-23T09:00:00Z"))
        #expect(weekday.explanation == "denied: no policy allows this operator to offer help to this machine")
        let weekend = set.decide(
            operatorGroups: [Self.tier1], machine: Self.workstation, mode: .view, ticket: nil,
            at: Self.date("2026-11-28T09:00:00Z"))
        #expect(weekend.explanation == #"denied by "change-freeze""#)
    }

    @Test("a ticket pattern that is not a regular expression matches no ticket")
    func invalidPatternFailsClosed() throws {
        var policy = try #require(Self.set.policies.first { $0.name == "tier1-view" })
        #expect(policy.accepts(ticket: "INC0012345"))
        policy.ticketPattern = "^INC[0-9"
        #expect(policy.ticketPattern == "^INC[0-9")
        #expect(!policy.accepts(ticket: "INC0012345"))
        #expect(!policy.accepts(ticket: "^INC[0-9"))
    }

    @Test("the deciding policies set the consent timeout and the longest session")
    func limits() {
        let decision = Self.set.decide(
            operatorGroups: [Self.tier1, Self.tier2, Self.helpdesk], machine: Self.kiosk, mode: .view, ticket: nil,
            at: Self.date("2026-11-23T09:00:00Z"))
        #expect(decision.policies == ["tier2-control", "helpdesk-kiosks"])
        #expect(decision.consentTimeout == .seconds(30))
        #expect(decision.maximumDuration == .seconds(7_200))
        #expect(decision.strongest == .control)
    }
}

@Suite("Policy decisions on invitations")
struct InvitationPolicyTests {
    static let set: PolicySet = {
        let text = """
            policies:
              - name: tier1-view
                helpers: {groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"]}
                targets: {ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"]}
                allow: view
                invitations: {max_lifetime: 8h, password: required}
              - name: tier2-control
                helpers: {groups: ["cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"]}
                targets: {ous: ["ou=Computers,dc=corp,dc=example"]}
                allow: control
                invitations: {allow: view, email_domains: [partner.example]}
              - name: kiosks-offers-only
                helpers: {groups: ["cn=Helpdesk,ou=Groups,dc=corp,dc=example"]}
                targets: {groups: ["cn=Lobby Kiosks,ou=Computer Groups,ou=Groups,dc=corp,dc=example"]}
                allow: view
                invitations: {answer: false}
            """
        return try! PolicyParser.parse([PolicySet.File(name: "p.yaml", content: text)])
    }()
    static let monday = PolicyEvaluatorTests.date("2026-11-23T09:00:00Z")

    private func decide(
        _ groups: Set<DistinguishedName>, _ machine: MachineFacts, _ mode: AccessMode, lifetime: Duration,
        password: Bool
    ) -> Decision {
        Self.set.decide(
            operatorGroups: groups, machine: machine, mode: mode, ticket: nil, at: Self.monday,
            invitation: .init(lifetime: lifetime, hasPassword: password))
    }

    @Test("each policy's invitation rules decide for its helpers")
    func rules() {
        let tier1 = PolicyEvaluatorTests.tier1
        let tier2 = PolicyEvaluatorTests.tier2
        let workstation = PolicyEvaluatorTests.workstation
        #expect(decide([tier1], workstation, .view, lifetime: .seconds(3600), password: true).isAllowed)
        #expect(
            decide([tier1], workstation, .view, lifetime: .seconds(3600), password: false).explanation
                == #"denied: "tier1-view" answers only invitations protected by a password"#)
        #expect(
            decide([tier1], workstation, .view, lifetime: .seconds(86_400), password: true).explanation
                == #"denied: the invitation is valid for 1d; "tier1-view" answers invitations valid for at most 8h"#)
        // Tier 2 controls by offer, but an invitation opens only viewing; without a password, for up to 7 days.
        #expect(decide([tier2], workstation, .view, lifetime: .seconds(86_400), password: false).isAllowed)
        #expect(
            decide([tier2], workstation, .control, lifetime: .seconds(3600), password: true).explanation
                == #"denied: "tier2-control" allows view only"#)
        // The same helpers' offers are unchanged.
        #expect(
            Self.set.decide(operatorGroups: [tier2], machine: workstation, mode: .control, ticket: nil, at: Self.monday)
                .isAllowed)
        // A policy that answers no invitations: its helpers make offers only.
        let kiosk = PolicyEvaluatorTests.kiosk
        #expect(
            decide([PolicyEvaluatorTests.helpdesk], kiosk, .view, lifetime: .seconds(600), password: true).explanation
                == #"denied: "kiosks-offers-only" answers no invitations, only offers"#)
        #expect(
            Self.set.decide(
                operatorGroups: [PolicyEvaluatorTests.helpdesk], machine: kiosk, mode: .view, ticket: nil,
                at: Self.monday
            ).isAllowed)
    }

    @Test("a machine's limits are what any policy about it answers")
    func limits() {
        let workstation = Self.set.invitationLimits(for: PolicyEvaluatorTests.workstation)
        #expect(workstation.answeringPolicies == ["tier1-view", "tier2-control"])
        #expect(workstation.longestLifetime == .seconds(7 * 86_400))
        #expect(!workstation.passwordRequired)
        #expect(workstation.mailDomains == ["partner.example"])
        #expect(workstation.refusal(of: .init(lifetime: .seconds(86_400), hasPassword: false), machine: "WS") == nil)
        let server = Self.set.invitationLimits(for: PolicyEvaluatorTests.server)
        #expect(server.answeringPolicies == ["tier2-control"])
        let kiosk = Self.set.invitationLimits(for: PolicyEvaluatorTests.kiosk)
        #expect(kiosk.answeringPolicies == ["tier2-control"])
        let other = MachineFacts(
            name: "LAB-1", dn: try! DistinguishedName("cn=LAB-1,ou=Lab,dc=corp,dc=example"), groups: [])
        let none = Self.set.invitationLimits(for: other)
        #expect(
            none.refusal(of: .init(lifetime: .seconds(60), hasPassword: true), machine: "LAB-1")
                == "no policy lets anyone answer invitations from LAB-1")
        var strict = workstation
        strict.longestLifetime = .seconds(8 * 3600)
        strict.passwordRequired = true
        #expect(
            strict.refusal(of: .init(lifetime: .seconds(86_400), hasPassword: true), machine: "WS-0101")
                == "policy lets invitations from WS-0101 be valid for at most 8h; make it valid for less")
        #expect(
            strict.refusal(of: .init(lifetime: .seconds(3600), hasPassword: false), machine: "WS-0101")
                == "policy requires invitations from WS-0101 to be protected by a password")
    }
}

@Suite("Who gains or loses access when a policy set changes")
struct PolicyImpactTests {
    static func set(_ text: String) throws -> PolicySet {
        try PolicyParser.parse([PolicySet.File(name: "p.yaml", content: "policies:\n" + text)])
    }

    static let tier1 = """
          - name: tier1
            helpers: {groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"]}
            targets: {ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"]}
            allow: view
            require: {ticket: '^INC[0-9]{7}$'}

        """
    static let tier2 = """
          - name: tier2
            helpers: {groups: ["cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"]}
            targets: {ous: ["ou=Computers,dc=corp,dc=example"]}
            allow: control

        """

    @Test("each group the changed policies name: how many machines move from which access to which")
    func impact() throws {
        let workstations = (1...3).map {
            MachineFacts(
                name: "WS-\($0)",
                dn: try! DistinguishedName("cn=WS-\($0),ou=Workstations,ou=Computers,dc=corp,dc=example"),
                groups: [])
        }
        let machines = workstations + [PolicyEvaluatorTests.server, PolicyEvaluatorTests.kiosk]
        let monday = PolicyEvaluatorTests.date("2026-11-23T09:00:00Z")
        let old = try Self.set(Self.tier1 + Self.tier2)
        // Tier 1 loses its policy; tier 2 is narrowed to the workstations and to viewing.
        let new = try Self.set(
            Self.tier2.replacingOccurrences(of: "ou=Computers,dc", with: "ou=Workstations,ou=Computers,dc")
                .replacingOccurrences(of: "allow: control", with: "allow: view"))
        let impact = PolicyImpact(from: old, to: new, on: machines, at: monday)
        #expect(impact.machines == 5)
        #expect(
            impact.groups.map(\.summary) == [
                "cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example: 3 machines view → none",
                "cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example: 3 machines control → view, 2 machines control → none",
            ])
        // Nothing changes, nothing to say; from nothing, everything is a gain.
        #expect(PolicyImpact(from: old, to: old, on: machines, at: monday).groups.isEmpty)
        #expect(
            PolicyImpact(from: nil, to: new, on: machines, at: monday).groups.map(\.summary) == [
                "cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example: 3 machines none → view"
            ])
    }
}

@Suite("A ticket is asked for only where it would be enough")
struct TicketOrderTests {
    @Test("control asked of a view-only policy that requires a ticket: view only, not a missing ticket")
    func accessBeforeTicket() throws {
        let set = try PolicyImpactTests.set(PolicyImpactTests.tier1)
        let monday = PolicyEvaluatorTests.date("2026-11-23T09:00:00Z")
        let machine = PolicyEvaluatorTests.workstation
        let control = set.decide(
            operatorGroups: [PolicyEvaluatorTests.tier1], machine: machine, mode: .control, ticket: nil, at: monday)
        #expect(control.explanation == #"denied: "tier1" allows view only"#)
        let view = set.decide(
            operatorGroups: [PolicyEvaluatorTests.tier1], machine: machine, mode: .view, ticket: nil, at: monday)
        #expect(view.explanation == #"denied: a ticket is required by "tier1""#)
    }
}
