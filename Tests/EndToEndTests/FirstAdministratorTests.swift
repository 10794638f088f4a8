import Foundation
import ORATestSupport
import Testing

/// The first administrator comes from the configuration's `roles.administrators`; afterwards a policy file's `roles`
/// can take over, and the configuration's list can be emptied.
@Suite("The first administrator")
struct FirstAdministratorTests {
    static let warning =
        "nobody can administer ora: roles.administrators in the configuration is empty and the active policy names "
        + "no administrators; set roles.administrators to a directory group and restart the server"

    @Test("without administrators the server and ora status say so; a policy's roles take over from the configuration")
    func bootstrap() async throws {
        // No administrators anywhere: said at start and by every status; nobody may apply a policy.
        let bare = try await RunningServer()
        #expect(bare.process.standardErrorSoFar.contains("roles.administrators is empty"))
        let status = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["status", "--server", bare.base])
        #expect(status.status == 0, "\(status.standardError)")
        #expect(status.standardOutput.contains("warning:   " + Self.warning), "\(status.standardOutput)")
        let statusJSON = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["status", "--server", bare.base, "--json"])
        let document = try JSONSerialization.jsonObject(with: Data(statusJSON.standardOutput.utf8)) as? [String: Any]
        #expect(document?["status"] as? String == "ready", "\(statusJSON.standardOutput)")
        #expect((document?["warnings"] as? [String])?.contains(Self.warning) == true)
        let ora = SourceTree.binary("ora")
        let stranded = try await OperatorCLI("peter.schmidt", server: bare, ora: ora)
        let refused = await stranded.run("policy", "apply", SourceTree.root + "/Policies", "--yes")
        #expect(refused.status != 0)
        #expect(
            refused.standardError.contains("only an administrator or auditor may read the policy"),
            "\(refused.standardError)")

        // A replica configured with the first administrators group: no warning; its administrator applies the
        // example policy, whose roles name the same group.
        let configured = try await RunningServer(
            sharing: bare, extra: "roles:\n  administrators: [\"cn=RA Admins,ou=Groups,dc=corp,dc=example\"]")
        #expect(!configured.process.standardErrorSoFar.contains("roles.administrators is empty"))
        let admin = try await OperatorCLI("peter.schmidt", server: configured, ora: ora)
        #expect(!(await admin.run("status").standardOutput.contains("nobody can administer")))
        let applied = await admin.run("policy", "apply", SourceTree.root + "/Policies", "--yes")
        #expect(applied.status == 0, "\(applied.standardError)")

        // The replica without roles in its configuration now takes its administrators from the active policy: the
        // warning is gone and the same person administers through it.
        #expect(
            try await eventually(within: .seconds(20)) {
                !(await stranded.run("status").standardOutput.contains("nobody can administer"))
            })
        let again = await stranded.run("policy", "rollback", "1")
        #expect(again.status == 0, "\(again.standardError)")
        #expect(again.standardOutput == "version 1 is already active; nothing changed\n")
    }
}
