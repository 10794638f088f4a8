public import Logging
public import ORAStore
public import PostgresNIO

/// A fresh database for one test, with a running `PostgresClient` on it; dropped afterwards.
public struct TestDatabase: Sendable {
    /// A logger that keeps test output to warnings and errors.
    public static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// The services the database is on.
    public let services: TestServices
    /// The database's name.
    public let name: String

    /// Runs `body` with a fresh database and a running client on it, and drops the database afterwards.
    public static func with<Result: Sendable>(
        _ body: (TestDatabase, PostgresClient) async throws -> Result
    ) async throws -> Result {
        let services = try TestServices.fromEnvironment()
        let name = try await services.createDatabase()
        let database = TestDatabase(services: services, name: name)
        let client = database.makeClient()
        let outcome: Swift.Result<Result, any Error>
        do {
            outcome = .success(
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await client.run() }
                    defer { group.cancelAll() }
                    return try await body(database, client)
                })
        } catch {
            outcome = .failure(error)
        }
        try? await services.dropDatabase(name)
        return try outcome.get()
    }

    /// A client for the database, to be run by the caller.
    public func makeClient() -> PostgresClient {
        PostgresClient(configuration: configuration, backgroundLogger: Self.logger)
    }

    /// The application role's connection settings for the database.
    public var configuration: PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: services.postgresHost,
            port: services.postgresPort,
            username: services.postgresUser,
            password: services.postgresPassword,
            database: name,
            tls: .disable
        )
    }

    /// The same settings for a direct connection, as start-up checks open.
    public var probeConfiguration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(
            host: services.postgresHost, port: services.postgresPort, username: services.postgresUser,
            password: services.postgresPassword, database: name, tls: .disable)
    }

    /// Where the database is, as ORAStore connects to it.
    public var endpoint: DatabaseEndpoint {
        DatabaseEndpoint(client: configuration, probe: probeConfiguration)
    }

    /// Runs SQL through psql, independently of the code under test.
    public func sql(_ statement: String) async throws -> String {
        try await services.sql(statement, database: name)
    }

    /// Runs SQL through psql as the superuser.
    public func superuserSQL(_ statement: String) async throws -> String {
        try await services.superuserSQL(statement, database: name)
    }
}
