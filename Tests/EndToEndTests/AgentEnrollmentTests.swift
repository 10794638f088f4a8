import Foundation
import ORATestSupport
import Testing

/// Enrollment with the real binaries: an administrator makes a token with `ora`, `ora-agent enroll` uses it, and
/// only computer objects of the directory get in.
@Suite("Agent enrollment")
struct AgentEnrollmentTests {
    static let roles = """
        roles:
          administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
          auditors: ["cn=Security,ou=Groups,dc=corp,dc=example"]
        """
    let ora = SourceTree.binary("ora")
    let agent = SourceTree.binary("ora-agent")

    /// `ora` logged in as `user` against `server`.
    struct CLI {
        let ora: String
        let environment: [String: String]
        let home: TemporaryDirectory

        init(_ user: String, server: RunningServer, ora: String) async throws {
            home = try TemporaryDirectory()
            self.ora = ora
            environment = ["ORA_CONFIG_DIR": home.path, "ORA_SERVER": server.base, "HOME": home.path]
            let login = await ChildProcess.runAsync(
                ora, arguments: ["login", "--user", user, "--password-stdin"], environment: environment,
                standardInput: "ora-demo\n")
            guard login.status == 0 else { throw TestSetupError("login as \(user): \(login.standardError)") }
        }

        func run(_ arguments: String...) async -> ChildProcess.Result {
            await ChildProcess.runAsync(ora, arguments: arguments, environment: environment)
        }
    }

    func enroll(_ server: RunningServer, token: String, machine: String, state: String) async -> ChildProcess.Result {
        await ChildProcess.runAsync(
            agent,
            arguments: [
                "enroll", "--server", server.base, "--token", token, "--machine", machine, "--state-dir", state,
            ])
    }

    @Test("tokens enroll domain computers only, as often as they may; revoked machines re-enroll with a new key")
    func enrollment() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let admin = try await CLI("peter.schmidt", server: server, ora: ora)
        let created = await admin.run("agents", "token", "create", "--uses", "2", "--comment", "new laptops")
        #expect(created.status == 0, "\(created.standardError)")
        let token = created.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("ora_enr_"))
        #expect(created.standardError.contains("for 2 enrollments"))

        let states = try TemporaryDirectory()
        let first = await enroll(server, token: token, machine: "WS-0101", state: states.path + "/a")
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("enrolled as ws-0101"))
        let keyFile = states.path + "/a/device-key.pem"
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8).contains("BEGIN PRIVATE KEY"))

        // Not a computer object: refused before the token is used.
        let stranger = await enroll(server, token: token, machine: "LAPTOP-HOME", state: states.path + "/x")
        #expect(stranger.status == 2)
        #expect(
            stranger.standardError.contains(
                "the directory has no computer object named LAPTOP-HOME; only domain machines may enroll"))
        #expect(!FileManager.default.fileExists(atPath: states.path + "/x/device-key.pem"))

        let second = await enroll(server, token: token, machine: "WS-0102", state: states.path + "/b")
        #expect(second.status == 0, "\(second.standardError)")
        let third = await enroll(server, token: token, machine: "WS-0201", state: states.path + "/c")
        #expect(third.status == 2)
        #expect(third.standardError.contains("the enrollment token is not valid: unknown, used up or expired"))

        // An operator's token is not an enrollment token.
        let operatorToken = try await server.token("peter.schmidt")
        let borrowed = await enroll(server, token: operatorToken, machine: "WS-0201", state: states.path + "/c")
        #expect(borrowed.status == 2)
        #expect(borrowed.standardError.contains("the enrollment token is not valid"))

        // Administrators and auditors see the machines; helpdesk operators do not, nor may they make tokens.
        let listed = await admin.run("agents", "list")
        #expect(listed.standardOutput.split(separator: "\n").map { $0.prefix(7) } == ["ws-0101", "ws-0102"])
        let auditor = try await CLI("sara.klein", server: server, ora: ora)
        #expect(await auditor.run("agents", "list").status == 0)
        let helpdesk = try await CLI("hannah.fischer", server: server, ora: ora)
        let refused = await helpdesk.run("agents", "list")
        #expect(refused.status == 2)
        #expect(refused.standardError.contains("only an administrator or auditor may list enrolled machines"))
        #expect(await helpdesk.run("agents", "token", "create").status == 2)
        #expect(await auditor.run("agents", "token", "create").status == 2)

        // Revoked: shown as such; revoking again is refused.
        let keyBefore = (await admin.run("agents", "show", "ws-0101")).standardOutput
        #expect(await admin.run("agents", "revoke", "WS-0101").status == 0)
        let shown = await admin.run("agents", "show", "ws-0101")
        #expect(shown.standardOutput.contains("status:        revoked"))
        #expect(shown.standardOutput.contains("by uid=peter.schmidt,ou=People,dc=corp,dc=example"))
        let again = await admin.run("agents", "revoke", "ws-0101")
        #expect(again.status == 2)
        #expect(again.standardError.contains("ws-0101 is already revoked"))
        #expect((await admin.run("agents", "revoke", "ws-9999")).standardError.contains("no machine named ws-9999"))

        // A new token re-enrolls it with a new key.
        let renewed = await admin.run("agents", "token", "create", "--expires", "10m")
        let reenrolled = await enroll(
            server, token: renewed.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), machine: "ws-0101",
            state: states.path + "/a")
        #expect(reenrolled.status == 0, "\(reenrolled.standardError)")
        let after = (await admin.run("agents", "show", "ws-0101")).standardOutput
        #expect(after.contains("status:        enrolled"))
        #expect(keyLine(after) != keyLine(keyBefore))

        #expect(
            try server.sql(
                "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE event LIKE 'agent.%'")
                == "agent.token_created,agent.enrolled,agent.enrolled,agent.revoked,agent.token_created,agent.enrolled")
        #expect(
            try server.sql(
                "SELECT details->>'replaced_key' = \(quoted(keyLine(keyBefore))) FROM audit_events WHERE event = 'agent.enrolled' ORDER BY sequence DESC LIMIT 1"
            ) == "t")
    }

    @Test("malformed enrollments are refused with what was wrong, and nothing is stored")
    func malformed() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let admin = try await server.token("peter.schmidt")
        let created = try await HTTP.post(
            server.base + "/api/v1/agents/tokens", json: #"{"expires_in_seconds": 600, "uses": 5}"#, token: admin)
        #expect(created.status == 201)
        let token = try #require(created.object["token"] as? String)
        let key =
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcYHg4E+3k3NwTqOJxsWCS3n92UYZLu9v64/JRuOL8veYNVpSm22MhxwyXBtYexZgIVwUEBDpwm0OYLEtSkFPJA=="
        let cases: [(String, Int, String)] = [
            (#"{"token": "\#(token)"}"#, 400, "expected a JSON object"),
            (
                #"{"token": "\#(token)", "machine": "WS-0101", "public_key": "AAAA", "os": "Debian", "agent_version": "1"}"#,
                400, "the device key is not a P-256 public key"
            ),
            (
                #"{"token": "\#(token)", "machine": "WS-0101\r\nforged", "public_key": "\#(key)", "os": "Debian", "agent_version": "1"}"#,
                400, "'machine' must be 1 to 200 characters without control characters"
            ),
            (
                #"{"token": "\#(token)", "machine": "*)(objectClass=*", "public_key": "\#(key)", "os": "Debian", "agent_version": "1"}"#,
                403, "the directory has no computer object named *)(objectClass=*"
            ),
            (
                #"{"token": "ora_enr_guess", "machine": "WS-0101", "public_key": "\#(key)", "os": "Debian", "agent_version": "1"}"#,
                401, "the enrollment token is not valid"
            ),
        ]
        for (body, status, message) in cases {
            let answer = try await HTTP.post(server.base + "/agent/v1/enroll", json: body)
            #expect(answer.status == status, "\(body)")
            #expect((answer.object["message"] as? String)?.contains(message) == true, "\(answer.body)")
        }
        #expect(try server.sql("SELECT count(*) FROM machines") == "0")
        #expect(try server.sql("SELECT uses_left FROM enrollment_tokens") == "5")
        // Out-of-range tokens are refused too.
        for body in [#"{"expires_in_seconds": 10}"#, #"{"expires_in_seconds": 99999999}"#, #"{"uses": 0}"#] {
            let answer = try await HTTP.post(server.base + "/api/v1/agents/tokens", json: body, token: admin)
            #expect(answer.status == 400, "\(body)")
        }
    }

    private func keyLine(_ text: String) -> String {
        text.split(separator: "\n").first { $0.hasPrefix("device key:") }.map {
            String($0.dropFirst("device key:".count)).trimmingCharacters(in: .whitespaces)
        } ?? ""
    }

    private func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
