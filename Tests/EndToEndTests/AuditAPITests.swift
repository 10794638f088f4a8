import AsyncHTTPClient
import Foundation
import NIOCore
import ORAClient
import ORATestSupport
import OpenAPIRuntime
import Testing

/// The audit log through the real server and CLI: who may read it, search, timelines, exports an outside tool
/// re-verifies, checkpoints, and events from two replicas in one chain.
@Suite("Audit log API and CLI")
struct AuditAPITests {
    static let roles = """
        roles:
          administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
          auditors: ["cn=Security,ou=Groups,dc=corp,dc=example"]
        """

    /// Runs `ora` logged in as `user` against `server`.
    struct CLI {
        let home: TemporaryDirectory
        let server: RunningServer

        init(_ server: RunningServer, user: String) async throws {
            self.server = server
            home = try TemporaryDirectory()
            let login = await run(["login", "--user", user, "--password-stdin"], input: "ora-demo\n")
            guard login.status == 0 else { throw TestSetupError("ora login failed: \(login.standardError)") }
        }

        func run(_ arguments: [String], input: String? = nil) async -> ChildProcess.Result {
            await ChildProcess.runAsync(
                SourceTree.binary("ora"), arguments: arguments,
                environment: ["ORA_CONFIG_DIR": home.path, "ORA_SERVER": server.base], standardInput: input)
        }
    }

    @Test("auditors and administrators search; others are refused; filters and mistakes are exact")
    func search() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let auditor = try await server.token("sara.klein")
        let helper = try await server.token("hannah.fischer")
        #expect(try await server.login("hannah.fischer", password: "wrong").status == 401)
        // A name with control characters is refused before anything is recorded; one that only looks like escapes
        // is recorded as typed, and shown so that it cannot pass for them.
        let controls = try await server.login("evil\r\n2026-01-01 forged line\u{1b}[2J", password: "x")
        #expect(controls.status == 400)
        let hostile = #"evil\r\n2026-01-01 forged line\u{1b}[2J"#
        #expect(try await server.login(hostile, password: "x").status == 401)

        let refused = try await HTTP.get(server.base + "/api/v1/audit", token: helper)
        #expect(refused.status == 403)
        #expect(refused.refusal?.message == "only an administrator or auditor may search the audit log")
        #expect(try await HTTP.get(server.base + "/api/v1/audit").status == 401)

        let all = try await HTTP.get(server.base + "/api/v1/audit", token: auditor)
        #expect(all.status == 200)
        let events = try all.decode(Schemas.AuditEventPage.self).events
        #expect(
            events.map(\.event) == [
                "operator.login_failed", "operator.login_failed", "operator.login", "operator.login",
            ])
        #expect(events.map(\.sequence) == [4, 3, 2, 1])
        #expect(events[0].actor.id == hostile)
        #expect(events[1].details.additionalProperties.value["reason"] as? String == "invalid_credentials")
        #expect(events[2].source == "127.0.0.1")

        let failed = try await HTTP.get(
            server.base + "/api/v1/audit?event=operator.login_failed&operator=Hannah.Fischer&limit=1", token: auditor)
        let failedPage = try failed.decode(Schemas.AuditEventPage.self)
        #expect(failedPage.events.count == 1)
        #expect(failedPage.next == nil && failed.body.contains(#""next":null"#), "\(failed.body)")
        // A DN finds the operator's events however it is spelt: case, spaces after commas, `;`, hex escapes.
        func count(operator dn: String) async throws -> Int? {
            let encoded = dn.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? dn
            let answer = try await HTTP.get(server.base + "/api/v1/audit?operator=" + encoded, token: auditor)
            return answer.json(Schemas.AuditEventPage.self)?.events.count
        }
        #expect(try await count(operator: "uid=sara.klein,ou=People,dc=corp,dc=example") == 1)
        for spelling in [
            "UID=Sara.Klein,OU=People,DC=corp,DC=example", "uid=sara.klein, ou=People, dc=corp, dc=example",
            "uid=sara.klein;ou=People;dc=corp;dc=example", #"uid=sara\2Eklein,ou=People,dc=corp,dc=example"#,
            " uid = sara.klein ,ou=People,dc=corp,dc=example ",
        ] {
            #expect(try await count(operator: spelling) == 1, "\(spelling)")
        }
        #expect(try await count(operator: "uid=sara.klein,ou=Groups,dc=corp,dc=example") == 0)
        let badDN = try await HTTP.get(server.base + "/api/v1/audit?operator=uid%3Dx%2C%3D", token: auditor)
        #expect(badDN.status == 400)
        #expect(
            badDN.refusal?.message.hasPrefix("operator must be an account name or a DN; not a valid DN (") == true,
            "\(badDN.body)")
        let paged = try await HTTP.get(server.base + "/api/v1/audit?event=operator.*&limit=3", token: auditor)
        #expect(paged.json(Schemas.AuditEventPage.self)?.next == "2")
        let rest = try await HTTP.get(server.base + "/api/v1/audit?event=operator.*&limit=3&before=2", token: auditor)
        #expect(rest.json(Schemas.AuditEventPage.self)?.events.map(\.sequence) == [1])

        for (query, message) in [
            ("limit=0", "limit must be a whole number from 1 to 1000, not \"0\""),
            (
                "since=yesterday",
                "since must be a date (2026-11-22) or an RFC 3339 time (2026-11-22T09:00:00Z), not \"yesterday\""
            ),
            ("outcome=maybe", "outcome must be one of success, denied, failure, not \"maybe\""),
            ("session=42", "session must be a session id (a UUID), not \"42\""),
            ("machne=WS-0101", "unknown query parameter \"machne\""),
            ("operator=%00", "operator must be at most 1024 characters without control characters"),
            ("q=a%0Ab", "q must be at most 1024 characters without control characters"),
            (
                "machine=" + String(repeating: "x", count: 1025),
                "machine must be at most 1024 characters without control characters"
            ),
        ] {
            let answer = try await HTTP.get(server.base + "/api/v1/audit?" + query, token: auditor)
            #expect(answer.status == 400, "\(query)")
            #expect(answer.refusal?.message == message)
            // The export reads the same filters (not the paging), and refuses them before its stream starts.
            guard query.hasPrefix("operator") || query.hasPrefix("q=") || query.hasPrefix("machine=") else { continue }
            let export = try await HTTP.get(server.base + "/api/v1/audit/export?" + query, token: auditor)
            #expect(export.status == 400, "export?\(query)")
            #expect(export.refusal?.message == message)
        }

        // The CLI prints one line per event, with outside text escaped.
        let cli = try await CLI(server, user: "sara.klein")
        let listed = await cli.run(["audit", "search", "--event", "operator.login_failed"])
        #expect(listed.status == 0, "\(listed.standardError)")
        let lines = listed.standardOutput.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(
            lines.first?.contains(#"operator.login_failed  failure  evil\\r\\n2026-01-01 forged line\\u{1b}[2J"#)
                == true,
            "\(lines)")
        let json = await cli.run(["audit", "search", "--operator", "sara.klein", "--json"])
        #expect(json.standardOutput.split(separator: "\n").count == 2)  // her login, and her own CLI login
        let badOutcome = await cli.run(["audit", "search", "--outcome", "maybe"])
        #expect(badOutcome.status == 64)
        #expect(badOutcome.standardError.contains("--outcome is success, denied or failure, not 'maybe'"))
        let unknownSession = await cli.run(["audit", "session", "not-a-uuid"])
        #expect(unknownSession.status == 64)
        let session = await cli.run(["audit", "session", UUID().uuidString])
        #expect(session.status == 0)
        #expect(session.standardOutput.hasPrefix("no events for session"))
    }

    @Test("policy changes are recorded with the version hash and what changed, in the same transaction")
    func policyEvents() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let cli = try await CLI(server, user: "peter.schmidt")
        let applied = await cli.run(["policy", "apply", SourceTree.root + "/Policies", "--comment", "first", "--yes"])
        #expect(applied.status == 0, "\(applied.standardError)")
        let changed = try TemporaryDirectory()
        try changed.write(
            "helpdesk.yaml",
            try String(contentsOfFile: SourceTree.root + "/Policies/helpdesk.yaml", encoding: .utf8)
                .replacingOccurrences(of: "max_duration: 30m", with: "max_duration: 20m"))
        let second = await cli.run(["policy", "apply", changed.path, "--comment", "second", "--yes"])
        #expect(second.status == 0, "\(second.standardError)")
        let rolledBack = await cli.run(["policy", "rollback", "1", "--comment", "again"])
        #expect(rolledBack.status == 0, "\(rolledBack.standardError)")
        let hash = try await server.sql("SELECT content_hash FROM policy_versions WHERE version = 1")
        let secondHash = try await server.sql("SELECT content_hash FROM policy_versions WHERE version = 2")
        #expect(
            try await server.sql(
                """
                SELECT event, actor_name, policy_version, details->>'content_hash', details->>'comment',
                    details->'added' ? 'never-servers', details->>'previous_version'
                FROM audit_events WHERE event LIKE 'policy.%' ORDER BY sequence
                """)
                == [
                    "policy.applied|peter.schmidt|1|\(hash)|first|t|",
                    "policy.applied|peter.schmidt|2|\(secondHash)|second|f|1",
                    "policy.rolled_back|peter.schmidt|1|\(hash)|again||2",
                ].joined(separator: "\n"))
        // Rolling back to the version that is active again records nothing.
        let again = await cli.run(["policy", "rollback", "1"])
        #expect(again.standardOutput == "version 1 is already active; nothing changed\n")
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event LIKE 'policy.%'") == "3")
        // Relative times: the last hour holds them; nothing is older than a day ago and later than an hour ago.
        let recent = await cli.run(["audit", "search", "--event", "policy.*", "--since", "1h"])
        #expect(recent.standardOutput.split(separator: "\n").count == 3, "\(recent.standardOutput)")
        let today = await cli.run(["audit", "search", "--event", "policy.*", "--since", "today"])
        #expect(today.standardOutput.split(separator: "\n").count == 3, "\(today.standardOutput)")
        let older = await cli.run(["audit", "search", "--event", "policy.*", "--since", "1d", "--until", "1h"])
        #expect(older.status == 0 && older.standardOutput == "no events match\n", "\(older.standardOutput)")
    }

    @Test("the JSON export re-verifies with an outside tool, CSV is a spreadsheet's, checkpoints verify with openssl")
    func exportAndCheckpoint() async throws {
        let server = try await RunningServer(extra: Self.roles)
        for user in ["hannah.fischer", "lena.wolf", "=cmd|' /C calc'!A0"] {
            _ = try await server.login(user, password: user == "lena.wolf" ? "ora-demo" : "wrong")
        }
        let cli = try await CLI(server, user: "sara.klein")
        let checkpoint = await cli.run(["audit", "checkpoint"])
        #expect(checkpoint.status == 0, "\(checkpoint.standardError)")
        let files = try TemporaryDirectory()
        let checkpointFile = try files.write("checkpoint.json", checkpoint.standardOutput)

        let export = await cli.run(["audit", "export", "--format", "jsonl"])
        #expect(export.status == 0, "\(export.standardError)")
        let exportFile = try files.write("audit.jsonl", export.standardOutput)
        #expect(export.standardOutput.split(separator: "\n").count == 5)  // 3 logins, sara's, the checkpoint

        let verifier = SourceTree.root + "/Tools/ora-audit-verify.py"
        let outside = await ChildProcess.runAsync(
            "/usr/bin/python3", arguments: [verifier, exportFile, "--checkpoint", checkpointFile])
        #expect(outside.status == 0, "\(outside.standardOutput)\(outside.standardError)")
        #expect(outside.standardOutput.hasPrefix("intact: 5 events (1-5)"))
        #expect(outside.standardOutput.contains("checkpoint matches and its signature is valid"))

        // One changed character in the export is found by the same tool.
        let tampered = try files.write(
            "tampered.jsonl", export.standardOutput.replacingOccurrences(of: "lena.wolf", with: "lena.wolff"))
        let caught = await ChildProcess.runAsync("/usr/bin/python3", arguments: [verifier, tampered])
        #expect(caught.status == 1)
        #expect(caught.standardOutput.contains("NOT intact: event 2"))

        let csv = await cli.run(["audit", "export", "--format", "csv", "--event", "operator.login_failed"])
        let rows = csv.standardOutput.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.count == 3)
        #expect(rows[0].hasPrefix("sequence,time,event,code,outcome,actor_kind"))
        #expect(rows[2].contains(",'=cmd|' /C calc'!A0,'=cmd|' /C calc'!A0,"))

        let verify = await cli.run(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.standardError)")
        #expect(
            verify.standardOutput.hasPrefix(
                "intact: 5 events verified (1–5), chain head 5, 1 signed checkpoint matched"))

        // Someone with the database edits an event: verify names it and exits 1.
        _ = try await server.services.superuserSQL(
            "SET session_replication_role = replica; UPDATE audit_events SET source_address = '10.0.0.1' WHERE sequence = 2",
            database: server.database)
        let broken = await cli.run(["audit", "verify"])
        #expect(broken.status == 1)
        let id = try await server.sql("SELECT id FROM audit_events WHERE sequence = 2")
        #expect(broken.standardError.contains("NOT intact: event 2 (\(id)): its contents do not match its hash"))
    }

    @Test("two server processes recording at once extend one valid chain")
    func twoReplicas() async throws {
        let first = try await RunningServer(extra: Self.roles)
        let second = try await RunningServer(sharing: first, extra: Self.roles)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                let server = index.isMultiple(of: 2) ? first : second
                group.addTask {
                    _ = try await server.login(index.isMultiple(of: 3) ? "lena.wolf" : "omar.haddad")
                }
            }
            try await group.waitForAll()
        }
        let auditor = try await second.token("sara.klein")
        let report = try await HTTP.get(first.base + "/api/v1/audit/verify", token: auditor)
        #expect(report.json(Schemas.AuditVerificationReport.self)?.intact == true, "\(report.body)")
        #expect(report.json(Schemas.AuditVerificationReport.self)?.verified == 41)
        #expect(try await first.sql("SELECT count(DISTINCT sequence), max(sequence) FROM audit_events") == "41|41")
    }

    @Test("a server whose role may only insert and read the audit log works, and only the owner's is warned about")
    func serverRole() async throws {
        let owner = try await RunningServer(extra: Self.roles)
        let restricted = try await RunningServer(sharing: owner, extra: Self.roles, asServerRole: true)
        let cli = try await CLI(restricted, user: "peter.schmidt")
        let applied = await cli.run(["policy", "apply", SourceTree.root + "/Policies", "--yes"])
        #expect(applied.status == 0, "\(applied.standardError)")
        let checkpoint = await cli.run(["audit", "checkpoint"])
        #expect(checkpoint.status == 0, "\(checkpoint.standardError)")
        let verify = await cli.run(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.standardError)")
        #expect(verify.standardOutput.hasPrefix("intact: 3 events verified"))
        let ownerLog = await owner.stop().standardError
        let restrictedLog = await restricted.stop().standardError
        #expect(ownerLog.contains("the server's database role owns the audit log"))
        #expect(!restrictedLog.contains("owns the audit log"), "\(restrictedLog)")
    }
}
