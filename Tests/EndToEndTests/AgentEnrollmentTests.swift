import Crypto
import Foundation
import ORAClient
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
    func enroll(_ server: RunningServer, token: String, machine: String, state: String) async -> ChildProcess.Result {
        await ChildProcess.runAsync(
            agent,
            arguments: [
                "enroll", "--server", server.base, "--token", token, "--machine", machine, "--state-dir", state,
            ] + server.agentTrust)
    }

    @Test("tokens enroll only what they are bound to, as often as they may; domain computers only")
    func enrollment() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let admin = try await OperatorCLI("peter.schmidt", server: server, ora: ora)
        let created = await admin.run(
            "agents", "token", "create", "--ou", "ou=Workstations,ou=Computers,dc=corp,dc=example", "--uses", "2",
            "--comment", "new workstations")
        #expect(created.status == 0, "\(created.standardError)")
        let token = created.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("ora_enr_"))
        #expect(
            created.standardError.contains(
                "enrolls computers below ou=Workstations,ou=Computers,dc=corp,dc=example; valid until"))
        #expect(created.standardError.contains("for 2 enrollments"))

        let states = try TemporaryDirectory()
        let first = await enroll(server, token: token, machine: "WS-0101", state: states.path + "/a")
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("enrolled as ws-0101"))
        let keyFile = states.path + "/a/device-key.pem"
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8).contains("BEGIN PRIVATE KEY"))

        // Not a computer object, or not below the token's OU: refused before the token is used.
        let stranger = await enroll(server, token: token, machine: "LAPTOP-HOME", state: states.path + "/x")
        #expect(stranger.status == 2)
        #expect(
            stranger.standardError.contains(
                "the directory has no computer object named LAPTOP-HOME; only domain machines may enroll"))
        #expect(!FileManager.default.fileExists(atPath: states.path + "/x/device-key.pem"))
        let laptop = await enroll(server, token: token, machine: "LT-0042", state: states.path + "/x")
        #expect(laptop.status == 2)
        #expect(
            laptop.standardError.contains(
                "this enrollment token may enroll ou ou=Workstations,ou=Computers,dc=corp,dc=example, which LT-0042 is not"
            ), "\(laptop.standardError)")

        let second = await enroll(server, token: token, machine: "WS-0102", state: states.path + "/b")
        #expect(second.status == 0, "\(second.standardError)")
        let third = await enroll(server, token: token, machine: "WS-0201", state: states.path + "/c")
        #expect(third.status == 2)
        #expect(third.standardError.contains("the enrollment token is not valid: unknown, used up, expired or revoked"))

        // Bound to a computer group (nested membership counts) and to one machine.
        let group = await admin.run(
            "agents", "token", "create", "--group",
            "cn=Finance Workstations,ou=Computer Groups,ou=Groups,dc=corp,dc=example", "--uses", "5")
        let groupToken = group.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let outsideGroup = await enroll(server, token: groupToken, machine: "LT-0043", state: states.path + "/x")
        #expect(outsideGroup.standardError.contains("which LT-0043 is not"), "\(outsideGroup.standardError)")
        let one = await admin.run("agents", "token", "create", "--machine", "WS-0202")
        #expect(one.standardError.contains("enrolls machine ws-0202"))
        let oneToken = one.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let wrongName = await enroll(server, token: oneToken, machine: "WS-0201", state: states.path + "/x")
        #expect(wrongName.status == 2)
        #expect(
            wrongName.standardError.contains("this enrollment token may enroll machine ws-0202, which WS-0201 is not"))
        #expect(await enroll(server, token: oneToken, machine: "ws-0202", state: states.path + "/d").status == 0)
        let manyForOne = await admin.run("agents", "token", "create", "--machine", "WS-0201", "--uses", "2")
        #expect(manyForOne.standardError.contains("a token bound to one machine is good for one enrollment"))

        // An operator's token is not an enrollment token.
        let operatorToken = try await server.token("peter.schmidt")
        let borrowed = await enroll(server, token: operatorToken, machine: "WS-0201", state: states.path + "/c")
        #expect(borrowed.status == 2)
        #expect(borrowed.standardError.contains("the enrollment token is not valid"))

        // Administrators and auditors see the machines; helpdesk operators do not, nor may they make tokens.
        let listed = await admin.run("agents", "list")
        #expect(
            listed.standardOutput.split(separator: "\n").map { $0.prefix(7) } == ["ws-0101", "ws-0102", "ws-0202"])
        // A page at a time, by name: each after the last name of the one before; a bad page is refused.
        let adminToken = try await server.token("peter.schmidt")
        func page(_ query: String) async throws -> HTTP.Answer {
            try await HTTP.get(server.base + "/api/v1/agents?" + query, token: adminToken)
        }
        #expect(try await page("limit=2").json([Schemas.Machine].self)?.map(\.name) == ["ws-0101", "ws-0102"])
        #expect(try await page("limit=2&after=ws-0102").json([Schemas.Machine].self)?.map(\.name) == ["ws-0202"])
        #expect(try await page("after=WS-0202").json([Schemas.Machine].self)?.isEmpty == true)
        let zero = try await page("limit=0")
        #expect(zero.status == 400 && zero.refusal?.error == "invalid_parameter", "\(zero.body)")
        #expect(zero.refusal?.message == "limit must be a whole number from 1 to 10000, not \"0\"")
        let long = try await page("after=" + String(repeating: "w", count: 256))
        #expect(long.status == 400, "\(long.body)")
        #expect(long.refusal?.message == "after must be at most 255 characters without control characters")
        let misspelt = try await page("limt=5")
        #expect(misspelt.status == 400 && misspelt.refusal?.message == "unknown query parameter \"limt\"")
        let auditor = try await OperatorCLI("sara.klein", server: server, ora: ora)
        #expect(await auditor.run("agents", "list").status == 0)
        let helpdesk = try await OperatorCLI("hannah.fischer", server: server, ora: ora)
        let refused = await helpdesk.run("agents", "list")
        #expect(refused.status == 2)
        #expect(refused.standardError.contains("only an administrator or auditor may list enrolled machines"))
        #expect(await helpdesk.run("agents", "token", "create", "--machine", "ws-0201").status == 2)
        #expect(await auditor.run("agents", "token", "create", "--machine", "ws-0201").status == 2)
        #expect(await helpdesk.run("agents", "rekey", "ws-0101").status == 2)

        // Revoked: shown as such; revoking again is refused.
        #expect(await admin.run("agents", "revoke", "WS-0101").status == 0)
        let shown = await admin.run("agents", "show", "ws-0101")
        #expect(shown.standardOutput.contains("status:        revoked"))
        #expect(shown.standardOutput.contains("by uid=peter.schmidt,ou=People,dc=corp,dc=example"))
        let again = await admin.run("agents", "revoke", "ws-0101")
        #expect(again.status == 2)
        #expect(again.standardError.contains("ws-0101 is already revoked"))
        #expect((await admin.run("agents", "revoke", "ws-9999")).standardError.contains("no machine named ws-9999"))
        #expect(
            try await server.sql(
                "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE event LIKE 'agent.%'")
                == "agent.token_created,agent.enrolled,agent.enrolled,agent.token_created,agent.token_created,"
                + "agent.enrolled,agent.revoked")
    }

    @Test(
        "a token holder cannot take over an enrolled or revoked machine; only an administrator's re-key moves its key, and both fingerprints are audited"
    )
    func hijack() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let admin = try await OperatorCLI("peter.schmidt", server: server, ora: ora)
        let created = await admin.run(
            "agents", "token", "create", "--ou", "ou=Computers,dc=corp,dc=example", "--uses", "5", "--comment",
            "new laptops")
        let token = created.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let states = try TemporaryDirectory()
        #expect(await enroll(server, token: token, machine: "WS-0101", state: states.path + "/real").status == 0)
        let realKey = keyLine((await admin.run("agents", "show", "ws-0101")).standardOutput)

        // The attacker holds the same token and says it is WS-0101.
        let taken = await enroll(server, token: token, machine: "WS-0101", state: states.path + "/attacker")
        #expect(taken.status == 2)
        #expect(
            taken.standardError.contains(
                "ws-0101 is enrolled already; only an administrator can give it a new key (ora agents rekey ws-0101)"),
            "\(taken.standardError)")
        #expect(keyLine((await admin.run("agents", "show", "ws-0101")).standardOutput) == realKey)
        #expect(
            try await server.sql("SELECT uses_left FROM enrollment_tokens") == "4", "a refused attempt uses nothing")

        // Revoking does not free the name for the token either.
        #expect(await admin.run("agents", "revoke", "ws-0101").status == 0)
        let afterRevoke = await enroll(server, token: token, machine: "ws-0101", state: states.path + "/attacker")
        #expect(afterRevoke.standardError.contains("ws-0101 is revoked; only an administrator can give it a new key"))
        #expect(try await server.sql("SELECT revoked_at IS NOT NULL FROM machines WHERE name = 'ws-0101'") == "t")

        // The agent hears the same for its revoked name as for a name never enrolled.
        let revokedRun = await ChildProcess.runAsync(
            agent,
            arguments: [
                "run", "--consent", "command", "--consent-command", "/bin/false", "--state-dir",
                states.path + "/real",
            ])
        let unknownState = states.path + "/unknown"
        try FileManager.default.copyItem(atPath: states.path + "/real", toPath: unknownState)
        let enrollment = try String(contentsOfFile: unknownState + "/agent.json", encoding: .utf8)
        try enrollment.replacingOccurrences(of: "ws-0101", with: "ws-0202").write(
            toFile: unknownState + "/agent.json", atomically: true, encoding: .utf8)
        let unknownRun = await ChildProcess.runAsync(
            agent,
            arguments: [
                "run", "--consent", "command", "--consent-command", "/bin/false", "--state-dir",
                unknownState,
            ])
        #expect(revokedRun.status == 2)
        #expect(unknownRun.status == 2)
        #expect(
            revokedRun.standardError.contains("this machine is not enrolled, or its enrollment was revoked"),
            "\(revokedRun.standardError)")
        #expect(
            revokedRun.standardError.replacingOccurrences(of: "ws-0101", with: "NAME")
                == unknownRun.standardError.replacingOccurrences(of: "ws-0202", with: "NAME"))

        // The administrator's re-key: one use, that name only.
        let rekey = await admin.run("agents", "rekey", "WS-0101", "--comment", "INC0012345 disk replaced")
        #expect(rekey.status == 0, "\(rekey.standardError)")
        #expect(rekey.standardError.contains("re-keys ws-0101 once"))
        let rekeyToken = rekey.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let elsewhere = await enroll(server, token: rekeyToken, machine: "WS-0102", state: states.path + "/x")
        #expect(
            elsewhere.standardError.contains("this enrollment token may enroll machine ws-0101, which WS-0102 is not"))
        let rekeyed = await enroll(server, token: rekeyToken, machine: "ws-0101", state: states.path + "/real")
        #expect(rekeyed.status == 0, "\(rekeyed.standardError)")
        let after = (await admin.run("agents", "show", "ws-0101")).standardOutput
        #expect(after.contains("status:        enrolled"))
        let newKey = keyLine(after)
        #expect(newKey != realKey)
        let replay = await enroll(server, token: rekeyToken, machine: "ws-0101", state: states.path + "/attacker")
        #expect(replay.standardError.contains("the enrollment token is not valid"))
        #expect((await admin.run("agents", "rekey", "ws-9999")).standardError.contains("no machine named ws-9999"))

        #expect(
            try await server.sql(
                "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE event LIKE 'agent.%'")
                == "agent.token_created,agent.enrolled,agent.revoked,agent.token_created,agent.rekeyed")
        #expect(
            try await server.sql(
                """
                SELECT concat_ws('|', machine, details->>'purpose', details->>'bound_kind', details->>'revoked',
                    details->>'public_key_fingerprint', details->>'comment')
                FROM audit_events WHERE event = 'agent.token_created' ORDER BY sequence DESC LIMIT 1
                """) == "ws-0101|rekey|machine|true|\(Self.fingerprint(realKey))|INC0012345 disk replaced")
        #expect(
            try await server.sql(
                """
                SELECT concat_ws('|', details->>'previous_key_fingerprint', details->>'public_key_fingerprint',
                    details->>'revocation_lifted', actor_id)
                FROM audit_events WHERE event = 'agent.rekeyed'
                """) == "\(Self.fingerprint(realKey))|\(Self.fingerprint(newKey))|true|ws-0101")
        let chain = try await server.auditChainIntact()
        #expect(chain.intact, "\(chain.body)")
    }

    /// `SHA256:` and the unpadded base64 of the key's DER digest, computed here independently of the server.
    static func fingerprint(_ key: String) -> String {
        let digest = SHA256.hash(data: Data(base64Encoded: key) ?? Data())
        return "SHA256:" + Data(digest).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    @Test("an administrator lists enrollment tokens (never the tokens) and revokes one: it enrolls nothing after")
    func tokenRevocation() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let admin = try await OperatorCLI("peter.schmidt", server: server, ora: ora)
        let created = await admin.run("agents", "token", "create", "--machine", "WS-0102", "--comment", "spare")
        let token = created.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let listed = await admin.run("agents", "token", "list")
        #expect(listed.status == 0, "\(listed.standardError)")
        #expect(listed.standardOutput.contains("machine ws-0102  enroll  good until"), "\(listed.standardOutput)")
        #expect(!listed.standardOutput.contains(token), "the list shows the token itself")
        let id = String(listed.standardOutput.prefix(36))
        #expect(await admin.run("agents", "token", "revoke", "not-an-id").status == 64)
        // The server says the same to a client that does not check first.
        let adminToken = try await server.token("peter.schmidt")
        let malformed = try await HTTP.post(
            server.base + "/api/v1/agents/tokens/not-an-id/revoke", json: "{}", token: adminToken)
        #expect(malformed.status == 400)
        #expect(malformed.refusal?.error == "invalid_request")
        #expect(malformed.refusal?.message == "the token id must be a UUID")
        let unknown = try await HTTP.post(
            server.base + "/api/v1/agents/tokens/\(UUID().uuidString.lowercased())/revoke", json: "{}",
            token: adminToken)
        #expect(unknown.status == 404)
        #expect(unknown.refusal?.error == "unknown_token")
        let revoked = await admin.run("agents", "token", "revoke", id)
        #expect(
            revoked.standardOutput == "the token \(id) for machine ws-0102 is revoked\n", "\(revoked.standardError)")
        let again = await admin.run("agents", "token", "revoke", id)
        #expect(again.status == 1 && again.standardError.contains("revoked already"), "\(again.standardError)")
        #expect(
            (await admin.run("agents", "token", "list")).standardOutput.contains("machine ws-0102  enroll  revoked"))
        let refused = await enroll(server, token: token, machine: "WS-0102", state: try TemporaryDirectory().path)
        #expect(refused.status != 0 && refused.standardError.contains("revoked"), "\(refused.standardError)")
        // Auditors may list; only administrators revoke.
        let auditor = try await OperatorCLI("sara.klein", server: server, ora: ora)
        #expect(await auditor.run("agents", "token", "list").status == 0)
        #expect(await auditor.run("agents", "token", "revoke", id).status == 2)
    }

    @Test("malformed enrollments are refused with what was wrong, and nothing is stored")
    func malformed() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let admin = try await server.token("peter.schmidt")
        let created = try await HTTP.post(
            server.base + "/api/v1/agents/tokens",
            json: #"{"expires_in_seconds": 600, "uses": 5, "ou": "dc=corp,dc=example"}"#, token: admin)
        #expect(created.status == 201)
        let token = try #require(created.json(Schemas.CreatedEnrollmentToken.self)?.token)
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
            // A well-formed token nobody made: 401 whether or not the name exists, so nothing about the directory
            // is told.
            (
                #"{"token": "ora_enr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "machine": "NO-SUCH-PC", "public_key": "\#(key)", "os": "Debian", "agent_version": "1"}"#,
                401, "the enrollment token is not valid"
            ),
            (
                #"{"token": "ora_enr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "machine": "WS-0101", "public_key": "\#(key)", "os": "Debian", "agent_version": "1"}"#,
                401, "the enrollment token is not valid"
            ),
        ]
        for (body, status, message) in cases {
            let answer = try await HTTP.post(server.base + "/agent/v1/enroll", json: body)
            #expect(answer.status == status, "\(body)")
            #expect((answer.refusal?.message)?.contains(message) == true, "\(answer.body)")
        }
        #expect(try await server.sql("SELECT count(*) FROM machines") == "0")
        #expect(try await server.sql("SELECT uses_left FROM enrollment_tokens") == "5")
        // A good request answers with the machine as stored, the token's creator among it.
        let enrolled = try await HTTP.post(
            server.base + "/agent/v1/enroll",
            json:
                #"{"token": "\#(token)", "machine": "WS-0101", "public_key": "\#(key)", "os": "Debian", "agent_version": "1"}"#
        )
        #expect(enrolled.status == 201, "\(enrolled.body)")
        #expect(enrolled.json(Schemas.Machine.self)?.enrolledBy == "uid=peter.schmidt,ou=People,dc=corp,dc=example")
        #expect(
            try await server.sql("SELECT enrolled_by FROM machines") == "uid=peter.schmidt,ou=People,dc=corp,dc=example"
        )
        // Out-of-range tokens are refused too.
        let bad: [(String, String)] = [
            (
                #"{"machine": "ws-0101", "expires_in_seconds": 10}"#,
                "a token must be valid for between 1 minute and 30 days"
            ),
            (#"{"machine": "ws-0101", "expires_in_seconds": 99999999}"#, "between 1 minute and 30 days"),
            (#"{"ou": "dc=corp,dc=example", "uses": 0}"#, "a token must be good for between 1 and 10000 enrollments"),
            (#"{"uses": 3}"#, "a token must be bound to exactly one of 'machine' (a name), 'ou' (a DN) or 'group'"),
            (#"{"machine": "ws-0101", "ou": "dc=corp,dc=example"}"#, "a token must be bound to exactly one of"),
            (#"{"ou": "not a dn"}"#, "'ou' must be a DN: not a valid DN"),
            (#"{"machine": "ws 0101"}"#, "'machine' must be a machine name of 1 to 200 characters without spaces"),
            (
                #"{"machine": "ws-0101", "comment": "\#(String(repeating: "x", count: 501))"}"#,
                "'comment' must be at most 500 characters"
            ),
        ]
        for (body, message) in bad {
            let answer = try await HTTP.post(server.base + "/api/v1/agents/tokens", json: body, token: admin)
            #expect(answer.status == 400, "\(body)")
            #expect((answer.refusal?.message)?.contains(message) == true, "\(answer.body)")
        }
        #expect(try await server.sql("SELECT count(*) FROM enrollment_tokens") == "1")
    }

    private func keyLine(_ text: String) -> String {
        text.split(separator: "\n").first { $0.hasPrefix("device key:") }.map {
            String($0.dropFirst("device key:".count)).trimmingCharacters(in: .whitespaces)
        } ?? ""
    }

    private func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
