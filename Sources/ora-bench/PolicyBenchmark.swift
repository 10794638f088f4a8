import Foundation
import ORACore

/// Policy evaluation and parsing with a large synthetic set: 1,000 policies across 100 helper groups and 200 OUs,
/// decided for operators in 50 groups.
enum PolicyBenchmark {
    static func run() throws {
        let groupCount = 100
        var text = "policies:\n"
        for index in 0..<1_000 {
            let access = index % 3 == 0 ? "control" : "view"
            text += """
                  - name: policy-\(index)
                    description: Synthetic policy number \(index).
                    helpers: {groups: ["cn=Helpers \(index % groupCount),ou=Groups,dc=corp,dc=example"]}
                    targets: {ous: ["ou=Site \(index % 200),ou=Computers,dc=corp,dc=example"], machines: [PC-\(index)]}
                    allow: \(access)

                """
            if index % 4 == 0 {
                text += "    require: {ticket: '^INC[0-9]{7}$'}\n"
            }
            if index % 5 == 0 {
                text +=
                    "    schedule: {timezone: Europe/Berlin, days: [mon, tue, wed, thu, fri], hours: \"07:00-19:00\"}\n"
            }
        }
        text += """
              - name: never-servers
                effect: deny
                helpers: {any: true}
                targets: {ous: ["ou=Servers,ou=Computers,dc=corp,dc=example"]}

            """
        let files = [PolicySet.File(name: "synthetic.yaml", content: text)]

        let clock = ContinuousClock()
        var parseTimes: [Duration] = []
        var set: PolicySet?
        for _ in 0..<10 {
            parseTimes.append(try clock.measure { set = try PolicyParser.parse(files) })
        }
        guard let set else { return }
        DirectoryBenchmark.report("parse and validate \(set.policies.count) policies", parseTimes)
        var composeTimes: [Duration] = []
        for _ in 0..<10 {
            composeTimes.append(try clock.measure { _ = try YAMLNode.parse(text, file: "synthetic.yaml") })
        }
        DirectoryBenchmark.report("  of which YAML parsing (libyaml through Yams)", composeTimes)

        let operatorGroups = Set(
            (0..<50).map { try! DistinguishedName("cn=Helpers \($0 * 2),ou=Groups,dc=corp,dc=example") })
        let machine = MachineFacts(
            name: "PC-42", dn: try DistinguishedName("cn=PC-42,ou=Site 42,ou=Computers,dc=corp,dc=example"),
            groups: [try DistinguishedName("cn=Pilot Machines,ou=Computer Groups,ou=Groups,dc=corp,dc=example")])
        let date = Date(timeIntervalSince1970: 1_795_420_800)  // a Monday, 09:00 in Berlin
        var decisions: [Duration] = []
        var allowed = 0
        for index in 0..<100_000 {
            let mode: AccessMode = index % 2 == 0 ? .view : .control
            decisions.append(
                clock.measure {
                    let decision = set.decide(
                        operatorGroups: operatorGroups, machine: machine, mode: mode, ticket: "INC0012345", at: date)
                    if decision.isAllowed { allowed += 1 }
                })
        }
        DirectoryBenchmark.report("decide (1,000 policies, 50 operator groups; \(allowed) allowed)", decisions)
    }
}
