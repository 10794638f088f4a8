import Foundation
import ORATestSupport
import Testing

/// Policy versions through the real servers: apply with the CLI, read and explain over HTTP, and a second replica
/// switching to each new version through PostgreSQL notifications.
@Suite("Policy apply, history, rollback and explain")
struct PolicyAPITests {
    static let roles = """
        roles:
          administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
        """

    private func token(_ server: RunningServer, _ user: String) async throws -> String {
        let body = String(decoding: try JSONEncoder().encode(["user": user, "password": "ora-demo"]), as: UTF8.self)
        return try #require(try await HTTP.post(server.base + "/api/v1/login", json: body).object["token"] as? String)
    }

    /// The active version a server reports, waiting (boundedly) for it to become `expected`.
    private func activeVersion(_ server: RunningServer, token: String, expected: Int) async throws -> Int? {
        var version: Int?
        for _ in 0..<200 {
            let answer = try await HTTP.get(server.base + "/api/v1/policy", token: token)
            version = (answer.object["activation"] as? [String: Any])?["version"] as? Int
            if version == expected { return version }
            try await Task.sleep(for: .milliseconds(50))
        }
        return version
    }

    @Test("apply on one replica, the other switches; rollback too; conflicts and invalid sets change nothing")
    func replicas() async throws {
        let first = try await RunningServer(extra: Self.roles)
        let second = try await RunningServer(sharing: first, extra: Self.roles)
        let admin = try await token(first, "peter.schmidt")
        let home = try TemporaryDirectory()
        let environment = ["ORA_CONFIG_DIR": home.path, "ORA_SERVER": first.base]
        let ora = SourceTree.binary("ora")
        let login = await ChildProcess.runAsync(
            ora, arguments: ["login", "--user", "peter.schmidt", "--password-stdin"], environment: environment,
            standardInput: "ora-demo\n")
        #expect(login.status == 0)

        let applied = await ChildProcess.runAsync(
            ora, arguments: ["policy", "apply", SourceTree.root + "/Policies", "--comment", "initial set"],
            environment: environment)
        #expect(applied.status == 0, "\(applied.standardError)")
        #expect(applied.standardOutput.contains("applied as version 1"))
        #expect(applied.standardOutput.contains("+ never-servers"))
        #expect(try await activeVersion(second, token: admin, expected: 1) == 1)

        // The second replica decides with the new version.
        let explain = try await HTTP.post(
            second.base + "/api/v1/policy/explain",
            json:
                #"{"operator": "hannah.fischer", "machine": "WS-0101", "ticket": "INC0012345", "at": "2026-11-23T09:00:00Z"}"#,
            token: admin)
        #expect(explain.object["explanation"] as? String == #"allowed (view) by "tier1-view-workstations""#)
        #expect(explain.object["policy_version"] as? Int == 1)

        // A change: version 2, then back to 1.
        let changed = try TemporaryDirectory()
        let original = try String(contentsOfFile: SourceTree.root + "/Policies/helpdesk.yaml", encoding: .utf8)
        try changed.write(
            "helpdesk.yaml", original.replacingOccurrences(of: "max_duration: 30m", with: "max_duration: 20m"))
        let reapplied = await ChildProcess.runAsync(
            ora, arguments: ["policy", "apply", changed.path], environment: environment)
        #expect(reapplied.standardOutput.contains("applied as version 2"), "\(reapplied.standardError)")
        #expect(reapplied.standardOutput.contains("~ helpdesk-view-kiosks"))
        #expect(try await activeVersion(second, token: admin, expected: 2) == 2)
        let rollback = await ChildProcess.runAsync(
            ora, arguments: ["policy", "rollback", "1"], environment: environment)
        #expect(rollback.status == 0)
        #expect(try await activeVersion(second, token: admin, expected: 1) == 1)
        let history = try await HTTP.get(second.base + "/api/v1/policy/versions", token: admin)
        #expect(
            (try JSONSerialization.jsonObject(with: Data(history.body.utf8)) as? [[String: Any]])?.compactMap {
                $0["action"] as? String
            } == ["rollback", "apply", "apply"])

        // A stale base version is a conflict; an invalid set is refused with every mistake; nothing changes.
        let stale = try await HTTP.send(
            "PUT", first.base + "/api/v1/policy",
            body: #"{"files": [{"name": "a.yaml", "content": "policies: []"}], "based_on": 2}"#, token: admin)
        #expect(stale.status == 409)
        let invalid = try await HTTP.send(
            "PUT", first.base + "/api/v1/policy",
            body: #"{"files": [{"name": "a.yaml", "content": "policies:\n  - name: x\n    allow: all\n"}]}"#,
            token: admin)
        #expect(invalid.status == 422)
        #expect((invalid.object["errors"] as? [String])?.count == 3)
        #expect(try await activeVersion(first, token: admin, expected: 1) == 1)
        #expect(try first.sql("SELECT count(*) FROM policy_versions") == "2")

        // Only administrators apply; people without a role do not even read.
        let helper = try await token(first, "hannah.fischer")
        #expect(try await HTTP.get(first.base + "/api/v1/policy", token: helper).status == 403)
        let forbidden = try await HTTP.send(
            "PUT", first.base + "/api/v1/policy", body: #"{"files": []}"#, token: helper)
        #expect(forbidden.status == 403)
    }
}
