import Foundation
import ORATestSupport
import Testing

@Suite("ora policy check")
struct PolicyCheckTests {
    @Test("the shipped Policies/ set is valid")
    func shippedSet() async {
        let result = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["policy", "check", SourceTree.root + "/Policies"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("policies"))
        #expect(result.standardOutput.contains("are valid"))
    }

    @Test("a broken set lists every mistake with its position and exits 1")
    func brokenSet() async throws {
        let directory = try TemporaryDirectory()
        try directory.write(
            "one.yaml",
            """
            policies:
              - name: a
                helpers: {any: true}
                targets: {any: true}
                allow: everything
            """)
        try directory.write(
            "two.yaml",
            """
            policies:
              - name: a
                helpers: {groups: ["cn=x,,dc=y"]}
                targets: {machines: [PC-1]}
                allow: view
                consent: false
            """)
        let result = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["policy", "check", directory.path])
        #expect(result.status == 1)
        let lines = result.standardError.split(separator: "\n").map(String.init)
        #expect(
            lines.contains {
                $0.hasPrefix("\(directory.path)/one.yaml:5:12: policies[0].allow: expected one of view, control")
            })
        #expect(
            lines.contains {
                $0.hasPrefix(
                    "\(directory.path)/two.yaml:2:11: policies[0].name: the name \"a\" is already used at one.yaml:2:11"
                )
            })
        #expect(
            lines.contains {
                $0.hasPrefix("\(directory.path)/two.yaml:3:24: policies[0].helpers.groups[0]: not a valid DN")
            })
        #expect(lines.contains { $0.contains("two.yaml:6:5: policies[0].consent: consent cannot be configured") })
        #expect(lines.last == "ora: error: 4 mistakes in \(directory.path); nothing is valid until all are fixed")
    }

    @Test("a directory without policy files is an error")
    func emptyDirectory() async throws {
        let directory = try TemporaryDirectory()
        let result = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["policy", "check", directory.path])
        #expect(result.status == 2)
        #expect(result.standardError.contains("holds no .yaml or .yml files"))
    }
}
