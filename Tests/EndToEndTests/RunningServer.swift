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
        try await HTTP.waitUntilServing(base + "/healthz", process: process)
    }

    deinit {
        process.send(SIGTERM)
        _ = process.waitUntilExit()
        try? services.dropDatabase(database)
    }

    /// Runs SQL in the server's database.
    func sql(_ statement: String) throws -> String {
        try services.sql(statement, database: database)
    }
}
