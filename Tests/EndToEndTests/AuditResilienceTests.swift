import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ORAClient
import ORATestSupport
import Testing

/// The audit log when things break: the database goes away while people work, the SIEM collector goes away and
/// comes back, and an export far larger than memory.
@Suite("Audit log under failure and load")
struct AuditResilienceTests {
    @Test("PostgreSQL stopped: audited actions are refused with 503; after restart what was acknowledged is there once")
    func databaseStopped() async throws {
        let postgres = try await PrivatePostgres()
        let directory = try await PrivateDirectory()
        let files = try TemporaryDirectory()
        let services = try TestServices.fromEnvironment()
        let port = try Network.freePort()
        let configuration = ServerConfigurationFile(
            port: port, databaseName: "ora", databasePort: postgres.port, ldapURI: directory.uri,
            ldapBindDN: directory.bindDN, ldapPasswordFile: directory.passwordFile,
            databasePasswordFile: postgres.passwordFile, auditSigningKeyFile: services.auditSigningKeyFile)
        let path = try files.write(
            "ora-server.yaml",
            configuration.yaml + "\nroles:\n  administrators: [\"cn=RA Admins,ou=Groups,dc=corp,dc=example\"]\n")
        let process = try ChildProcess(SourceTree.binary("ora-server"), arguments: ["--config", path])
        defer {
            process.send(SIGTERM)
            _ = process.waitUntilExit()
        }
        let base = "http://127.0.0.1:\(port)"
        try await HTTP.waitUntilServing(base + "/healthz", process: process)
        func login(_ user: String, _ password: String = "ora-demo") async throws -> HTTP.Answer {
            try await HTTP.post(base + "/api/v1/login", json: #"{"user": "\#(user)", "password": "\#(password)"}"#)
        }

        let admin = try await login("peter.schmidt")
        #expect(admin.status == 200)
        let token = admin.json(Schemas.LoginResult.self)?.token

        try await postgres.stop()
        for (user, password) in [("lena.wolf", "ora-demo"), ("omar.haddad", "wrong"), ("hannah.fischer", "ora-demo")] {
            let refused = try await login(user, password)
            #expect(refused.status == 503, "\(user): \(refused.body)")
            #expect(refused.refusal?.error == "audit_unavailable")
            #expect(refused.json(Schemas.LoginResult.self) == nil)
        }
        let logout = try await HTTP.post(base + "/api/v1/logout", token: token)
        #expect(logout.status == 503)
        // Each refusal is counted, for the alert that watches for them.
        let scraped = try await HTTP.get(base + "/metrics")
        #expect(MetricsScrape(text: scraped.body)["ora_audit_refusals_total"] ?? 0 >= 3, "\(scraped.body)")

        try await postgres.start()
        var back: HTTP.Answer?
        for _ in 0..<150 {
            back = try await login("lena.wolf")
            if back?.status == 200 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(back?.status == 200, "\(back?.body ?? "")")
        #expect(try await HTTP.post(base + "/api/v1/logout", token: token).status == 204)

        // Exactly what was acknowledged: two logins and one logout, each once; the refused ones left nothing behind.
        let stored = try await postgres.sql(
            "SELECT string_agg(event || ':' || actor_name, ',' ORDER BY sequence) FROM audit_events")
        #expect(stored == "operator.login:peter.schmidt,operator.login:lena.wolf,operator.logout:peter.schmidt")
        #expect(try await postgres.sql("SELECT count(*) FROM operator_sessions") == "2")
        let auditor = try await login("peter.schmidt")
        let verify = try await HTTP.get(
            base + "/api/v1/audit/verify", token: auditor.json(Schemas.LoginResult.self)?.token)
        #expect(verify.json(Schemas.AuditVerificationReport.self)?.intact == true, "\(verify.body)")
    }

    @Test("syslog forwarding survives the collector going away and coming back: no gap, the same fields")
    func syslogForwarding() async throws {
        let collector = try await SyslogCollector()
        let server = try await RunningServer(
            auditExtra: "  syslog: {address: 127.0.0.1:\(collector.port), hostname: ora-test}")
        for user in ["lena.wolf", "omar.haddad", "hannah.fischer"] { _ = try await server.login(user) }
        #expect(try await collector.waitFor(1...3))
        let first = collector.received.first { $0.contains(#"sequence="1""#) } ?? ""
        #expect(first.hasPrefix("<109>1 "))
        #expect(first.contains(" ora-test ora - ORA1001 [ora@32473 sequence=\"1\" id=\""))
        #expect(first.contains(#"actor_name="lena.wolf""#))
        #expect(first.hasSuffix("] operator.login success"))

        await collector.stop()
        // Actions go on while the collector is away, as fast as ever.
        for user in ["lena.wolf", "omar.haddad", "hannah.fischer", "sara.klein"] {
            #expect(try await server.login(user).status == 200)
        }
        #expect(try await server.login("lena.wolf", password: "wrong").status == 401)
        try await Task.sleep(for: .seconds(2))
        try await collector.start()
        #expect(try await collector.waitFor(1...8))
        #expect(Set(collector.sequences) == Set(1...8), "\(collector.sequences)")
        let failed = collector.received.first { $0.contains(#"sequence="8""#) } ?? ""
        #expect(failed.hasPrefix("<108>1 "))
        #expect(failed.contains(#"details="{\"reason\":\"invalid_credentials\"}""#))
        // The confirmed position is kept in the database, for a restart.
        var confirmed = ""
        for _ in 0..<50 {
            confirmed = try await server.sql("SELECT sequence FROM audit_forwarding")
            if confirmed == "8" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(confirmed == "8")
    }

    /// The line ends in `buffer`, counted by memchr (a loop in Swift over half a gigabyte is slow in debug builds).
    static func lineCount(_ buffer: ByteBuffer) -> Int {
        buffer.withUnsafeReadableBytes { bytes in
            guard var cursor = bytes.baseAddress else { return 0 }
            let end = cursor + bytes.count
            var count = 0
            while cursor < end, let found = memchr(cursor, 0x0a, end - cursor) {
                count += 1
                cursor = UnsafeRawPointer(found) + 1
            }
            return count
        }
    }

    /// A quarter of a million events, about 140 MB of JSON: enough that holding the export in memory would show,
    /// few enough for a debug build in CI (the release benchmark streams a million).
    @Test("an export of a quarter million events streams in bounded memory")
    func largeExport() async throws {
        let server = try await RunningServer(extra: AuditAPITests.roles)
        let token = try await server.token("sara.klein")
        _ = try await server.services.superuserSQL(
            """
            INSERT INTO audit_events (sequence, id, occurred_at, event, code, actor_kind, actor_id, actor_name, machine,
                source_address, outcome, details, previous_hash, hash)
            SELECT g + 1, gen_random_uuid(), now() - interval '1 hour' + g * interval '1 millisecond', 'offer.requested',
                'ORA2001', 'operator', 'uid=hannah.fischer,ou=People,dc=corp,dc=example', 'hannah.fischer',
                'WS-' || (g % 500), '192.0.2.7', 'success', jsonb_build_object('ticket', 'INC' || g),
                decode(repeat('00', 32), 'hex'), sha256(g::text::bytea)
            FROM generate_series(1, 250000) AS g
            """, database: server.database)
        let before = server.process.residentMemory
        var request = HTTPClientRequest(url: server.base + "/api/v1/audit/export?format=jsonl")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = TestTLS.clientConfiguration
        configuration.timeout.read = .seconds(120)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = client.shutdown() }
        let response = try await client.execute(request, timeout: .minutes(20))
        #expect(response.status == .ok)
        var lines = 0
        var peak = before
        var last = ByteBuffer()
        var chunks = 0
        for try await chunk in response.body {
            lines += Self.lineCount(chunk)
            chunks += 1
            if chunks.isMultiple(of: 200) { peak = max(peak, server.process.residentMemory) }
            last = chunk
        }
        #expect(lines == 250_001)
        #expect(String(buffer: last).contains(#""sequence":250001"#))
        // The server holds a few buffers, not the export: far less than the 140 MB it would take.
        #expect(peak - before < 48 * 1024 * 1024, "resident memory grew from \(before) to \(peak) bytes")
    }
}
