import Foundation
import ORATestSupport

/// An `ora-server` process a test started, with its own database and a private slapd, stopped with SIGTERM when
/// released.
final class RunningServer: @unchecked Sendable {
    let services: TestServices
    let directory: PrivateDirectory
    let database: String
    let files: TemporaryDirectory
    let process: ChildProcess
    let base: String
    /// Whether this server created the database (and drops it when released).
    private let ownsDatabase: Bool
    /// A server this one shares its database and directory with, kept alive as long as this one.
    private let partner: RunningServer?

    /// Starts a server; `extra` is appended to its configuration file.
    init(extra: String = "", directoryExtra: String = "") async throws {
        services = try TestServices.fromEnvironment()
        directory = try PrivateDirectory()
        database = try services.createDatabase(prefix: "e2e")
        files = try TemporaryDirectory()
        let port = try Network.freePort()
        let configuration = ServerConfigurationFile(
            port: port, databaseName: database, databasePort: services.postgresPort, ldapURI: directory.uri,
            ldapBindDN: directory.bindDN, ldapPasswordFile: directory.passwordFile,
            databasePasswordFile: services.postgresPasswordFile, directoryExtra: directoryExtra)
        let path = try files.write("ora-server.yaml", configuration.yaml + "\n" + extra + "\n")
        process = try ChildProcess(SourceTree.binary("ora-server"), arguments: ["--config", path])
        base = "http://127.0.0.1:\(port)"
        ownsDatabase = true
        partner = nil
        try await HTTP.waitUntilServing(base + "/healthz", process: process)
    }

    /// Starts a second replica on the same database and directory as `other`, with the same extra settings.
    init(sharing other: RunningServer, extra: String = "") async throws {
        services = other.services
        directory = other.directory
        database = other.database
        files = try TemporaryDirectory()
        let port = try Network.freePort()
        let configuration = ServerConfigurationFile(
            port: port, databaseName: database, databasePort: services.postgresPort, ldapURI: directory.uri,
            ldapBindDN: directory.bindDN, ldapPasswordFile: directory.passwordFile,
            databasePasswordFile: services.postgresPasswordFile)
        let path = try files.write("ora-server.yaml", configuration.yaml + "\n" + extra + "\n")
        process = try ChildProcess(SourceTree.binary("ora-server"), arguments: ["--config", path])
        base = "http://127.0.0.1:\(port)"
        ownsDatabase = false
        partner = other
        try await HTTP.waitUntilServing(base + "/healthz", process: process)
    }

    deinit {
        process.send(SIGTERM)
        _ = process.waitUntilExit()
        if ownsDatabase { try? services.dropDatabase(database) }
    }

    /// Runs SQL in the server's database.
    func sql(_ statement: String) throws -> String {
        try services.sql(statement, database: database)
    }
}
