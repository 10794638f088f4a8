import Logging
import ORATestSupport
import PostgresNIO

/// A fresh database for one test, with a running `PostgresClient` on it; dropped afterwards.
struct TestDatabase {
    /// A logger that keeps test output to warnings and errors.
    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    let services: TestServices
    let name: String

    static func with<Result: Sendable>(
        _ body: (TestDatabase, PostgresClient) async throws -> Result
    ) async throws -> Result {
        let services = try TestServices.fromEnvironment()
        let name = try services.createDatabase()
        let database = TestDatabase(services: services, name: name)
        defer { try? services.dropDatabase(name) }
        let client = database.makeClient()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(database, client)
        }
    }

    func makeClient() -> PostgresClient {
        PostgresClient(
            configuration: PostgresClient.Configuration(
                host: services.postgresHost,
                port: services.postgresPort,
                username: services.postgresUser,
                password: services.postgresPassword,
                database: name,
                tls: .disable
            ),
            backgroundLogger: Self.logger
        )
    }

    /// Runs SQL through psql, independently of the code under test.
    func sql(_ statement: String) throws -> String {
        try services.sql(statement, database: name)
    }

    /// Runs SQL through psql as the superuser.
    func superuserSQL(_ statement: String) throws -> String {
        try services.superuserSQL(statement, database: name)
    }
}
