import Foundation
import ORATestSupport
import Testing

/// The real `ora-server` binary against the real PostgreSQL and slapd.
@Suite("ora-server process")
struct ServerProcessTests {
    let services: TestServices

    init() throws {
        services = try TestServices.fromEnvironment()
    }

    @Test("serves health, readiness and metrics; reports a stopped directory; exits 0 on SIGTERM")
    func lifecycle() async throws {
        let server = try await RunningServer()
        let base = server.base
        let directory = server.directory

        let health = try await HTTP.get(base + "/healthz")
        #expect(health.status == 200)
        #expect(health.body.contains(#""status":"up""#))

        let ready = try await HTTP.get(base + "/readyz")
        #expect(ready.status == 200)
        #expect(ready.contentType?.hasPrefix("application/json") == true)
        let readyDocument = try ReadinessDocument(ready.body)
        #expect(readyDocument.status == "ready")
        #expect(readyDocument.database.ready && readyDocument.directory.ready)

        // Migrations ran at start-up and this replica registered itself.
        #expect(try await server.sql("SELECT count(*) FROM schema_migrations") != "0")
        #expect(try await server.sql("SELECT count(*) FROM server_instances") == "1")

        // The CLI reads the same readiness.
        let status = await ChildProcess.runAsync(SourceTree.binary("ora"), arguments: ["status", "--server", base])
        #expect(status.status == 0)
        #expect(status.standardOutput.contains("directory: ok"))
        // The test directory is plain ldap:// without StartTLS: said at start, and by every status.
        let plain = "directory connections to \(directory.uri) are not encrypted (ldap:// without StartTLS)"
        #expect(status.standardOutput.contains("warning:   " + plain), "\(status.standardOutput)")
        #expect(readyDocument.warnings?.first?.hasPrefix(plain) == true, "\(ready.body)")
        #expect(server.process.standardErrorSoFar.contains(plain))

        let metrics = try await HTTP.get(base + "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.contentType?.hasPrefix("text/plain") == true)
        #expect(metrics.body.contains(#"http_route="/readyz""#))

        // Directory down: not ready, with the directory named as the reason and the database still fine.
        try await directory.stop()
        let notReady = try await HTTP.get(base + "/readyz")
        #expect(notReady.status == 503)
        let notReadyDocument = try ReadinessDocument(notReady.body)
        #expect(notReadyDocument.status == "not_ready")
        #expect(notReadyDocument.database.ready)
        #expect(!notReadyDocument.directory.ready)
        #expect(notReadyDocument.directory.error?.contains("directory unreachable at \(directory.uri)") == true)
        #expect(try await HTTP.get(base + "/healthz").status == 200)

        let statusDown = await ChildProcess.runAsync(SourceTree.binary("ora"), arguments: ["status", "--server", base])
        #expect(statusDown.status == 1)
        #expect(statusDown.standardOutput.contains("directory: unavailable: directory unreachable"))

        // Directory back: ready again without restarting the server.
        try await directory.start()
        #expect(try await HTTP.get(base + "/readyz").status == 200)

        let result = await server.stop()
        #expect(!result.killedBySignal)
        #expect(result.status == 0)
        // A graceful shutdown removes this replica from the instance table.
        #expect(try await server.sql("SELECT count(*) FROM server_instances") == "0")
    }

    @Test("a database that cannot be reached stops start-up with one clear line and exit 1")
    func databaseUnreachable() async throws {
        let files = try TemporaryDirectory()
        let config = try files.write(
            "ora-server.yaml",
            ServerConfigurationFile(
                port: try Network.freePort(), databaseName: "ora", databasePort: try Network.freePort(),
                ldapURI: services.ldapURI, ldapBindDN: services.ldapBindDN, ldapPasswordFile: services.ldapPasswordFile,
                databasePasswordFile: services.postgresPasswordFile
            ).yaml)
        let result = await ChildProcess.runAsync(SourceTree.binary("ora-server"), arguments: ["--config", config])
        #expect(result.status == 1)
        let errorLines = result.standardError.split(separator: "\n").filter { $0.hasPrefix("ora-server: error:") }
        #expect(errorLines.count == 1)
        #expect(errorLines.first?.contains("database unavailable at 127.0.0.1:") == true)
        #expect(!result.standardError.contains(services.postgresPassword))
    }

    @Test("two concurrent `ora-server migrate` runs leave one consistent schema")
    func concurrentMigrate() async throws {
        let database = try await services.createDatabase(prefix: "e2e")
        let files = try TemporaryDirectory()
        let config = try files.write(
            "ora-server.yaml",
            ServerConfigurationFile(database: database, on: services).yaml)
        let first = try ChildProcess(SourceTree.binary("ora-server"), arguments: ["migrate", "--config", config])
        let second = try ChildProcess(SourceTree.binary("ora-server"), arguments: ["migrate", "--config", config])
        let results = [await first.exit(), await second.exit()]
        #expect(results.map(\.status) == [0, 0], "\(results.map(\.standardError))")
        let outputs = results.map { $0.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(outputs.filter { $0.hasPrefix("applied migrations: 1") }.count == 1, "\(outputs)")
        #expect(outputs.filter { $0 == "database schema is current" }.count == 1, "\(outputs)")
        let versions = try await services.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations", database: database)
        #expect(outputs.contains("applied migrations: \(versions.replacingOccurrences(of: ",", with: ", "))"))
        try await services.dropDatabase(database)
    }

    @Test("started with a soft limit of 1,024 open files, the server raises it to the hard limit and says so")
    func openFileLimit() async throws {
        let database = try await services.createDatabase(prefix: "e2e")
        let files = try TemporaryDirectory()
        let port = try Network.freePort()
        let config = try files.write(
            "ora-server.yaml",
            ServerConfigurationFile(
                database: database, on: services, port: port, auditSigningKeyFile: services.auditSigningKeyFile
            ).yaml)
        // prlimit sets the limits and then runs the server in its own place: the same process.
        let server = try ChildProcess(
            "/usr/bin/prlimit", arguments: ["--nofile=1024:8192", SourceTree.binary("ora-server"), "--config", config])
        defer {
            server.send(SIGKILL)
            _ = server.waitUntilExit()
        }
        try await HTTP.waitUntilServing("http://127.0.0.1:\(port)/healthz", process: server)
        let limits = try String(contentsOfFile: "/proc/\(server.processIdentifier)/limits", encoding: .utf8)
        let openFiles = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }
            .map {
                $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).prefix(2).joined(separator: " ")
            }
        #expect(openFiles == "8192 8192", "\(limits)")
        #expect(server.standardErrorSoFar.contains("open files: at most 8192"), "\(server.standardErrorSoFar)")
        #expect(server.standardErrorSoFar.contains("raised_from=1024"), "\(server.standardErrorSoFar)")
        try await services.dropDatabase(database)
    }
}
