import Foundation
import ORAClient
import ORACore

/// A release `ora-server` of its own for a benchmark, against the PostgreSQL and slapd of `Deploy/dev/services`, in a
/// fresh database (dropped at the end), with a policy that lets Helpdesk Tier 2 view (or control) workstations, and
/// lena.wolf (Tier 2) logged in as the helper.
struct BenchmarkServer {
    let environment: BenchmarkEnvironment
    let database: String
    let files: URL
    let server: ServerProcess
    let base: String
    let helper: String
    /// The server's self-signed certificate, which clients trust alone, when it has TLS of its own.
    let certificate: String?

    /// The server's address for WebSockets. With TLS, by name: the WebSocket client sends the URL's host as the TLS
    /// server name, which an address may not be.
    var socketBase: String {
        certificate == nil
            ? base.replacingOccurrences(of: "http://", with: "ws://")
            : base.replacingOccurrences(of: "https://127.0.0.1", with: "wss://localhost")
    }

    /// Starts the server and logs the helper in.
    /// - Parameter tls: serve HTTP and the relay over TLS of the server's own (`listen.tls`), with a self-signed
    ///   certificate made by openssl.
    static func start(
        name: String, offersPerMachinePerMinute: Int = 60, access: AccessMode = .view, journal: Bool = false,
        tls: Bool = false, openingsPerAddress: Int? = nil
    ) async throws -> BenchmarkServer {
        let environment = BenchmarkEnvironment()
        let database = "ora_bench_\(name)_\(UInt32.random(in: 0...UInt32.max))"
        try environment.psql("CREATE DATABASE \(database) OWNER \(environment.setting("ORA_PG_USER"))")
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("ora-bench-\(name)-\(getpid())")
        try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
        let port = try RelayBenchmark.freePort()
        let configuration = files.appendingPathComponent("ora-server.yaml").path
        let certificate = tls ? try Self.makeCertificate(in: files) : nil
        try Self.configuration(
            port: port, database: database, environment: environment,
            offersPerMachinePerMinute: offersPerMachinePerMinute,
            journal: journal ? files.appendingPathComponent("journal-1").path : nil, certificate: certificate,
            openingsPerAddress: openingsPerAddress
        ).write(toFile: configuration, atomically: true, encoding: .utf8)
        let base = (tls ? "https" : "http") + "://127.0.0.1:\(port)"
        let server = ServerProcess(
            binary: URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("ora-server").path,
            configuration: configuration, log: files.appendingPathComponent("ora-server.log").path)
        do {
            try server.start()
            try await AgentsBenchmark.waitUntilServing(base, server: server, caFile: certificate)

            // Policy: tier 2 may view workstations (or control them, when `access` says so).
            let admin = try await AgentsBenchmark.login("peter.schmidt", base: base, caFile: certificate)
            let policy = """
                policies:
                  - name: bench-view-workstations
                    helpers: { groups: ["cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"] }
                    targets: { ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"] }
                    allow: \(access.rawValue)
                    consent_timeout: 60s
                roles:
                  administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
                  auditors: ["cn=Security,ou=Groups,dc=corp,dc=example"]
                """
            let policyFiles = [Components.Schemas.PolicyFile(name: "bench.yaml", content: policy)]
            _ = try await AgentsBenchmark.client(base, token: admin, caFile: certificate)
                .applyPolicy(body: .json(.init(files: policyFiles))).ok
            let helper = try await AgentsBenchmark.login("lena.wolf", base: base, caFile: certificate)
            return BenchmarkServer(
                environment: environment, database: database, files: files, server: server, base: base,
                helper: helper, certificate: certificate)
        } catch {
            server.stop()
            try? environment.psql("DROP DATABASE \(database) WITH (FORCE)")
            try? FileManager.default.removeItem(at: files)
            throw error
        }
    }

    /// A self-signed certificate for 127.0.0.1 and localhost, and its key, in `directory`.
    /// - Returns: the certificate's path; the key is beside it (`.key` for `.pem`).
    static func makeCertificate(in directory: URL) throws -> String {
        let certificate = directory.appendingPathComponent("server.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout",
            directory.appendingPathComponent("server.key").path, "-out", certificate,
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError("openssl could not make a certificate") }
        return certificate
    }

    /// The configuration file of a server on `port` with the benchmark's database and the services' settings.
    /// - Parameter certificate: the server's own TLS certificate (its key beside it), or nil for plain TCP.
    static func configuration(
        port: Int, database: String, environment: BenchmarkEnvironment, offersPerMachinePerMinute: Int,
        journal: String?, certificate: String? = nil, openingsPerAddress: Int? = nil
    ) -> String {
        let journalLine = journal.map { "\n  journal: \($0)" } ?? ""
        let openings = openingsPerAddress.map { ", openings_per_address: \($0)" } ?? ""
        let tls =
            certificate.map {
                ", tls: {certificate_chain_file: \($0), private_key_file: \($0.dropLast(4)).key}"
            } ?? ""
        return """
            listen: { host: 127.0.0.1, port: \(port)\(tls)\(openings) }
            database:
              host: \(environment.setting("ORA_PG_HOST"))
              port: \(environment.setting("ORA_PG_PORT"))
              name: \(database)
              user: \(environment.setting("ORA_PG_USER"))
              password_file: \(environment.setting("ORA_PG_PASSWORD_FILE"))
              tls: disable
            directory:
              uris: ["\(environment.setting("ORA_LDAP_URI"))"]
              base_dn: "\(environment.setting("ORA_LDAP_BASE_DN"))"
              bind_dn: "\(environment.setting("ORA_LDAP_BIND_DN"))"
              password_file: \(environment.setting("ORA_LDAP_PASSWORD_FILE"))
            audit:
              signing_key_file: \(environment.setting("ORA_AUDIT_SIGNING_KEY_FILE"))\(journalLine)
            roles:
              administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
              auditors: ["cn=Security,ou=Groups,dc=corp,dc=example"]
            agents:
              server_names: ["127.0.0.1", "localhost"]
              offers_per_machine_per_minute: \(offersPerMachinePerMinute)
            screen:
              relay_port: 0
            log:
              level: warning
            """
    }

    /// Another replica of the server on the same database, with its own port and journal; not started yet.
    func replica(_ number: Int) throws -> (process: ServerProcess, base: String) {
        let port = try RelayBenchmark.freePort()
        let configuration = files.appendingPathComponent("ora-server-\(number).yaml").path
        try Self.configuration(
            port: port, database: database, environment: environment, offersPerMachinePerMinute: 600,
            journal: files.appendingPathComponent("journal-\(number)").path
        ).write(toFile: configuration, atomically: true, encoding: .utf8)
        let process = ServerProcess(
            binary: URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("ora-server").path,
            configuration: configuration, log: files.appendingPathComponent("ora-server-\(number).log").path)
        return (process, "http://127.0.0.1:\(port)")
    }

    /// Stops the server and removes its database and files.
    func stop() {
        server.stop()
        try? environment.psql("DROP DATABASE \(database) WITH (FORCE)")
        try? FileManager.default.removeItem(at: files)
    }
}
