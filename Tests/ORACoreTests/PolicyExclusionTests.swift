import Foundation
import ORACore
import Testing

/// `targets.except` and the one-level OU scope, in the shapes enterprises write them: a tier that controls the
/// computers but not the kiosks under them, servers never (but for the monitoring box), VIP machines left to another
/// policy, and a branch OU whose sub-OUs belong to someone else.
@Suite("Policy exclusions and scopes")
struct PolicyExclusionTests {
    static let tier1 = try! DistinguishedName("cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example")
    static let tier2 = try! DistinguishedName("cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example")
    static let branch = try! DistinguishedName("cn=Branch IT,ou=Groups,dc=corp,dc=example")
    static let desk = try! DistinguishedName("cn=Service Desk,ou=Groups,dc=corp,dc=example")
    static let vipGroup = try! DistinguishedName("cn=VIP Machines,ou=Computer Groups,dc=corp,dc=example")

    static func machine(_ name: String, in ou: String, groups: Set<DistinguishedName> = []) -> MachineFacts {
        MachineFacts(name: name, dn: try! DistinguishedName("cn=\(name),\(ou),dc=corp,dc=example"), groups: groups)
    }

    static let workstation = machine("WS-0101", in: "ou=Workstations,ou=Computers")
    static let kiosk = machine("KIOSK-1", in: "ou=Kiosks,ou=Workstations,ou=Computers")
    static let vip = machine("WS-CEO", in: "ou=Workstations,ou=Computers", groups: [vipGroup])
    static let fileServer = machine("SRV-FILE01", in: "ou=Servers,ou=Computers")
    static let monitor = machine("SRV-MON01", in: "ou=Servers,ou=Computers")
    static let branchDesk = machine("BR-001", in: "ou=Branch,ou=Computers")
    static let branchLab = machine("BR-LAB1", in: "ou=Lab,ou=Branch,ou=Computers")

    static let set = try! PolicyParser.parse([
        PolicySet.File(
            name: "p.yaml",
            content: """
                policies:
                  - name: tier2-control
                    helpers: {groups: ["cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"]}
                    targets:
                      ous: ["ou=Computers,dc=corp,dc=example"]
                      except:
                        ous: ["ou=Kiosks,ou=Workstations,ou=Computers,dc=corp,dc=example"]
                        groups: ["cn=VIP Machines,ou=Computer Groups,dc=corp,dc=example"]
                        machines: [srv-mon01]
                    allow: control
                  - name: kiosks-view
                    helpers: {groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"]}
                    targets: {ous: ["ou=Kiosks,ou=Workstations,ou=Computers,dc=corp,dc=example"]}
                    allow: view
                  - name: never-servers
                    effect: deny
                    helpers: {any: true}
                    targets:
                      ous: ["ou=Servers,ou=Computers,dc=corp,dc=example"]
                      except: {machines: [SRV-MON01]}
                  - name: branch-desks
                    helpers: {groups: ["cn=Branch IT,ou=Groups,dc=corp,dc=example"]}
                    targets: {ous: [{dn: "ou=Branch,ou=Computers,dc=corp,dc=example", scope: one}]}
                    allow: control
                  - name: everything-but-the-branch-desks
                    helpers: {groups: ["cn=Service Desk,ou=Groups,dc=corp,dc=example"]}
                    targets:
                      any: true
                      except: {ous: [{dn: "ou=Branch,ou=Computers,dc=corp,dc=example", scope: one}]}
                    allow: view
                    invitations: {answer: true}
                """)
    ])

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var groups: Set<DistinguishedName>
        var machine: MachineFacts
        var mode: AccessMode
        var explanation: String
        var exclusions: [String] = []
        var testDescription: String { name }
    }

    static let kiosks = "ous: ou=Kiosks,ou=Workstations,ou=Computers,dc=corp,dc=example"

    static let cases: [Case] = [
        Case(
            name: "tier 2 controls a workstation under the computers", groups: [tier2], machine: workstation,
            mode: .control, explanation: #"allowed (control) by "tier2-control""#),
        Case(
            name: "a kiosk under the computers is left out of tier 2's policy; nothing else is about tier 2",
            groups: [tier2], machine: kiosk, mode: .view,
            explanation: #"denied: "tier2-control" leaves this machine out (except \#(kiosks))"#,
            exclusions: ["tier2-control"]),
        Case(
            name: "an exclusion is not a deny: another policy still lets a kiosk be viewed",
            groups: [tier1, tier2], machine: kiosk, mode: .view,
            explanation:
                #"allowed (view) by "kiosks-view"; "tier2-control" leaves this machine out (except \#(kiosks))"#,
            exclusions: ["tier2-control"]),
        Case(
            name: "and no more than viewed: the exclusion is named beside the weaker policy",
            groups: [tier1, tier2], machine: kiosk, mode: .control,
            explanation:
                #"denied: "kiosks-view" allows view only; "tier2-control" leaves this machine out (except \#(kiosks))"#,
            exclusions: ["tier2-control"]),
        Case(
            name: "a VIP machine is left out by its computer group", groups: [tier2], machine: vip, mode: .view,
            explanation:
                #"denied: "tier2-control" leaves this machine out (except groups: cn=VIP Machines,ou=Computer Groups,dc=corp,dc=example)"#,
            exclusions: ["tier2-control"]),
        Case(
            name: "servers never, whatever the allow policies say", groups: [tier2], machine: fileServer,
            mode: .view, explanation: #"denied by "never-servers""#),
        Case(
            name: "the deny's exception is not denied; tier 2 leaves it out too, so nothing allows it",
            groups: [tier2], machine: monitor, mode: .view,
            explanation:
                #"denied: "tier2-control" leaves this machine out (except machines: srv-mon01); "never-servers" leaves this machine out (except machines: srv-mon01)"#,
            exclusions: ["tier2-control", "never-servers"]),
        Case(
            name: "a one-level scope takes the computers directly in the OU", groups: [branch], machine: branchDesk,
            mode: .control, explanation: #"allowed (control) by "branch-desks""#),
        Case(
            name: "and not those in an OU below it", groups: [branch], machine: branchLab, mode: .view,
            explanation: "denied: no policy allows this operator to offer help to this machine"),
        Case(
            name: "any machine except those directly in an OU: one below it is not excepted", groups: [desk],
            machine: branchLab, mode: .view, explanation: #"allowed (view) by "everything-but-the-branch-desks""#),
        Case(
            name: "any machine except those directly in an OU: one in it is", groups: [desk], machine: branchDesk,
            mode: .view,
            explanation:
                #"denied: "everything-but-the-branch-desks" leaves this machine out (except ous: ou=Branch,ou=Computers,dc=corp,dc=example (one level))"#,
            exclusions: ["everything-but-the-branch-desks"]),
        Case(
            name: "an exclusion in a policy about other helpers is not mentioned", groups: [branch], machine: kiosk,
            mode: .view, explanation: "denied: no policy allows this operator to offer help to this machine"),
    ]

    @Test("who may help which machine, and the exclusion named when it mattered", arguments: cases)
    func decide(_ testCase: Case) {
        let decision = Self.set.decide(
            operatorGroups: testCase.groups, machine: testCase.machine, mode: testCase.mode, ticket: nil,
            at: Date(timeIntervalSince1970: 1_790_000_000))
        #expect(decision.explanation == testCase.explanation)
        #expect(decision.isAllowed == testCase.explanation.hasPrefix("allowed"))
        #expect(decision.exclusions.map(\.policy) == testCase.exclusions)
    }

    @Test("machine names in except compare as machine names do, whatever their case")
    func machineCase() {
        let lower = Self.machine("srv-mon01", in: "ou=Servers,ou=Computers")
        let decision = Self.set.decide(
            operatorGroups: [Self.tier2], machine: lower, mode: .view, ticket: nil, at: Date())
        #expect(
            decision.exclusions == [
                Policy.Exclusion(policy: "tier2-control", entry: "machines: srv-mon01"),
                Policy.Exclusion(policy: "never-servers", entry: "machines: srv-mon01"),
            ])
    }

    @Test("a policy that leaves a machine out does not answer its person's invitations")
    func invitations() {
        #expect(Self.set.invitationLimits(for: Self.branchDesk).answeringPolicies == ["tier2-control", "branch-desks"])
        #expect(
            Self.set.invitationLimits(for: Self.branchLab).answeringPolicies == [
                "tier2-control", "everything-but-the-branch-desks",
            ])
        #expect(
            Self.set.invitationLimits(for: Self.kiosk).answeringPolicies == [
                "kiosks-view", "everything-but-the-branch-desks",
            ])
    }

    @Test(
        "mistakes in except and scope are reported where they are written",
        arguments: [
            (
                "except: {}",
                "p.yaml:4:34: policies[0].targets.except: leaves out nothing: set ous, groups or "
                    + "machines, or remove except"
            ),
            (
                "except: {any: true}",
                "p.yaml:4:40: policies[0].targets.except.any: a policy cannot leave out every "
                    + "machine; remove any, or the policy"
            ),
            (
                "except: {hosts: [a]}",
                "p.yaml:4:35: policies[0].targets.except.hosts: unknown setting (allowed "
                    + "here: groups, machines, ous)"
            ),
            (
                "except: {ous: [{dn: \"ou=X,dc=corp\", scope: base}]}",
                "p.yaml:4:69: "
                    + "policies[0].targets.except.ous[0].scope: expected one of subtree, one, found \"base\""
            ),
            (
                "except: {ous: [{scope: one}]}", "p.yaml:4:42: policies[0].targets.except.ous[0].dn: is required"
            ),
            (
                "except: {ous: [\"not a dn\"]}",
                "p.yaml:4:41: policies[0].targets.except.ous[0]: not a valid DN (missing '=' after not): not a dn"
            ),
        ])
    func mistakes(except: String, expected: String) throws {
        let text = """
            policies:
              - name: p
                helpers: {any: true}
                targets: {any: true, \(except)}
                allow: view
            """
        let errors = #expect(throws: PolicyErrors.self) {
            try PolicyParser.parse([PolicySet.File(name: "p.yaml", content: text)])
        }
        #expect(errors?.description == expected)
    }

    @Test("every entry of except is a directory reference, checked like the targets' own")
    func references() {
        let kinds = Self.set.references.filter { $0.keyPath.contains(".except.") }.map {
            "\($0.keyPath) \($0.kind.rawValue)"
        }
        #expect(
            kinds == [
                "policies[0].targets.except.ous[0] ou", "policies[0].targets.except.groups[0] computer_group",
                "policies[4].targets.except.ous[0].dn ou",
            ])
    }
}
