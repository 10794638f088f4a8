public import Foundation
public import ORAClient
import Testing

/// An `ora-server` process a test started, with its own database and a private slapd (or those of another server it
/// runs beside), stopped with SIGTERM when released.
public final class RunningServer: @unchecked Sendable {
    public let services: TestServices
    public let directory: PrivateDirectory
    public let database: String
    public private(set) var process: ChildProcess
    /// `https://localhost:PORT`, or `http://127.0.0.1:PORT` for a server without TLS of its own.
    public let base: String
    /// The CA file that verifies the server (`TestTLS`), or nil for a server without TLS of its own.
    public let caFile: String?
    private let configurationPath: String
    private let files: TemporaryDirectory
    /// Whether this server created the database (and drops it when released).
    private let ownsDatabase: Bool
    /// A server this one shares its database and directory with, kept alive as long as this one.
    private let partner: RunningServer?
    /// The ora-server binary it runs.
    public let binary: String

    /// Starts a server with a database and directory of its own.
    /// - Parameters:
    ///   - extra: settings appended to the configuration file.
    ///   - directoryExtra: settings added to its `directory` section (indented by two spaces).
    ///   - auditExtra: settings added to its `audit` section (indented by two spaces).
    ///   - listenExtra: settings added to its `listen` section (indented by two spaces).
    ///   - screenExtra: settings added to its `screen` section (indented by two spaces).
    ///   - binary: the ora-server to run; the one built here unless given (an installed package's).
    ///   - tls: serve the HTTP and relay ports with TLS of its own (`TestTLS`), as a deployment does; without it,
    ///     plain on loopback, for the tests of what a plain connection does.
    public convenience init(
        extra: String = "", directoryExtra: String = "", auditExtra: String = "", listenExtra: String = "",
        screenExtra: String = "", binary: String = SourceTree.binary("ora-server"), tls: Bool = true
    ) async throws {
        let services = try TestServices.fromEnvironment()
        try await self.init(
            services: services, directory: try await PrivateDirectory(),
            database: try await services.createDatabase(prefix: "e2e"),
            partner: nil, extra: extra, directoryExtra: directoryExtra, auditExtra: auditExtra,
            listenExtra: listenExtra, screenExtra: screenExtra, binary: binary, tls: tls)
    }

    /// Starts a second replica on the same database and directory as `other`, with TLS of its own when `other` has.
    /// - Parameters:
    ///   - asServerRole: run with the login role that has only the `ora_server` role's rights (INSERT and SELECT
    ///     on the audit log), as a production server does, instead of the schema's owner.
    ///   - relayPort: the relay port to listen on; any free one by default.
    public convenience init(
        sharing other: RunningServer,
        extra: String = "",
        directoryExtra: String = "",
        auditExtra: String = "",
        asServerRole: Bool = false,
        relayPort: Int = 0
    ) async throws {
        try await self.init(
            services: other.services, directory: other.directory, database: other.database, partner: other,
            extra: extra, directoryExtra: directoryExtra, auditExtra: auditExtra, asServerRole: asServerRole,
            relayPort: relayPort, binary: other.binary, tls: other.caFile != nil)
    }

    private init(
        services: TestServices,
        directory: PrivateDirectory,
        database: String,
        partner: RunningServer?,
        extra: String,
        directoryExtra: String,
        auditExtra: String,
        listenExtra: String = "",
        screenExtra: String = "",
        asServerRole: Bool = false,
        relayPort: Int = 0,
        binary: String,
        tls: Bool
    ) async throws {
        self.services = services
        self.directory = directory
        self.database = database
        self.partner = partner
        self.binary = binary
        ownsDatabase = partner == nil
        files = try TemporaryDirectory()
        let certificates = tls ? try TestTLS.required() : nil
        caFile = certificates?.ca
        // A port that was free a moment ago can be taken by another test before the server binds it; the server
        // then stops with "Address already in use", and another port is tried.
        var attempt = 0
        while true {
            attempt += 1
            let port = try Network.freePort()
            var configuration = ServerConfigurationFile(
                port: port, databaseName: database, databasePort: services.postgresPort, ldapURI: directory.uri,
                ldapBindDN: directory.bindDN, ldapPasswordFile: directory.passwordFile,
                databasePasswordFile: asServerRole
                    ? services.postgresServerPasswordFile : services.postgresPasswordFile,
                directoryExtra: directoryExtra, databaseUser: asServerRole ? services.postgresServerUser : "ora",
                auditSigningKeyFile: services.auditSigningKeyFile, auditJournal: files.path + "/audit-journal",
                auditExtra: auditExtra)
            configuration.listenExtra = listenExtra
            if let certificates {
                configuration.listenExtra +=
                    "\n  tls:\n    certificate_chain_file: \(certificates.certificate)\n"
                    + "    private_key_file: \(certificates.key)\n"
            }
            configuration.screenExtra = screenExtra
            configuration.relayPort = relayPort
            let path = try files.write("ora-server.yaml", configuration.yaml + "\n" + extra + "\n")
            let process = try ChildProcess(binary, arguments: ["--config", path])
            // With TLS by the name its certificate has, as an agent must name it.
            let base = tls ? "https://localhost:\(port)" : "http://127.0.0.1:\(port)"
            do {
                try await HTTP.waitUntilServing(base + "/healthz", process: process)
            } catch  where attempt < 5 && process.standardErrorSoFar.contains("Address already in use") {
                continue
            }
            (self.process, self.base, configurationPath) = (process, base, path)
            return
        }
    }

    /// Stopping is waited for in a task of its own, so that no cooperative thread is blocked (see
    /// `ChildProcess.run`); it still records an issue when the server does not stop by itself.
    deinit {
        let (process, services, database, ownsDatabase) = (process, services, database, ownsDatabase)
        let running = process.isRunning
        if running { process.send(SIGTERM) }
        // The server it shares a database with is released only once this one has stopped: it drops the database.
        let partner = partner
        Task {
            if running { Self.checkStopped(await process.exit(within: .seconds(60))) }
            if ownsDatabase { try? await services.dropDatabase(database) }
            withExtendedLifetime(partner) {}
        }
    }

    /// Sends SIGTERM and waits for the process to end.
    public func stop() async -> ChildProcess.Result {
        process.send(SIGTERM)
        let result = await process.exit(within: .seconds(60))
        Self.checkStopped(result)
        return result
    }

    /// A server that does not stop by itself, or only once its stopping limit cancelled what was left, is a failure
    /// of the test it ran in, not a delay to pass over.
    private static func checkStopped(_ result: ChildProcess.Result) {
        let log = result.standardError
        let end = log.split(separator: "\n").suffix(40).joined(separator: "\n")
        if result.status == ChildProcess.timedOut {
            Issue.record("ora-server did not exit within 60 s of SIGTERM and was killed; its log ends:\n\(end)")
        } else if log.contains("ora-server did not stop within") {
            Issue.record(
                "ora-server stopped only when its stopping limit cancelled what was left; its log ends:\n\(end)")
        }
    }

    /// Stops the server with SIGTERM and starts it again, with the same configuration and port.
    public func restart() async throws {
        _ = await stop()
        try await start()
    }

    /// Kills the server with SIGKILL, as a crash would: it does nothing more.
    public func crash() async {
        process.send(SIGKILL)
        _ = await process.exit()
    }

    /// Starts the stopped server again, with the same configuration and port.
    public func start() async throws {
        process = try ChildProcess(binary, arguments: ["--config", configurationPath])
        try await HTTP.waitUntilServing(base + "/healthz", process: process)
    }

    /// Whether `GET /api/v1/audit/verify`, asked as the auditor sara.klein, finds the audit chain intact; the
    /// answer's body otherwise.
    public func auditChainIntact() async throws -> (intact: Bool, body: String) {
        let verified = try await HTTP.get(base + "/api/v1/audit/verify", token: try await token("sara.klein"))
        return (verified.json(Schemas.AuditVerificationReport.self)?.intact == true, verified.body)
    }

    /// The base of its WebSocket URLs: `wss://…`, or `ws://…` without TLS of its own.
    public var webSocketBase: String {
        base.replacingOccurrences(of: "https://", with: "wss://").replacingOccurrences(of: "http://", with: "ws://")
    }

    /// What `ora-agent enroll` is given to verify the server: `--ca-file` with the test CA, for a server with TLS of
    /// its own.
    public var agentTrust: [String] { caFile.map { ["--ca-file", $0] } ?? [] }

    /// Runs SQL in the server's database.
    public func sql(_ statement: String) async throws -> String {
        try await services.sql(statement, database: database)
    }

    /// `POST /api/v1/login`.
    public func login(_ user: String, password: String = "ora-demo") async throws -> HTTP.Answer {
        let body = String(decoding: try JSONEncoder().encode(["user": user, "password": password]), as: UTF8.self)
        return try await HTTP.post(base + "/api/v1/login", json: body)
    }

    /// The bearer token of a successful login.
    public func token(_ user: String) async throws -> String {
        let answer = try await login(user)
        guard let token = answer.json(Schemas.LoginResult.self)?.token else {
            throw TestSetupError("login as \(user) failed: \(answer.body)")
        }
        return token
    }
}
