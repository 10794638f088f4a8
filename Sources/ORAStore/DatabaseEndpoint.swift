public import Logging
public import PostgresNIO

/// The database client every store works on. The composition builds one from a `DatabaseEndpoint` and runs it as a
/// service; it does not need PostgresNIO for that.
public typealias DatabaseClient = PostgresClient

/// Where and how to reach the database: the settings of the pooled client and of the direct connection that checks
/// it, as the server's configuration made them. Everything that connects is made from it here, in ORAStore.
public struct DatabaseEndpoint: Sendable {
    let client: PostgresClient.Configuration
    let probe: PostgresConnection.Configuration

    /// The endpoint of these configurations.
    public init(client: PostgresClient.Configuration, probe: PostgresConnection.Configuration) {
        self.client = client
        self.probe = probe
    }

    /// A pooled client, connected once it runs.
    public func makeClient(logger: Logger) -> DatabaseClient {
        PostgresClient(configuration: client, backgroundLogger: logger)
    }

    /// The direct connection's check, which fails fast with the real reason.
    public func makeProbe(logger: Logger) -> DatabaseProbe {
        DatabaseProbe(configuration: probe, logger: logger)
    }

    /// Runs `body` with a client that runs for as long as `body` does: for commands that connect, act and leave.
    public func withClient<Result: Sendable>(
        logger: Logger, _ body: @Sendable (DatabaseClient) async throws -> Result
    ) async throws -> Result {
        let client = makeClient(logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}
