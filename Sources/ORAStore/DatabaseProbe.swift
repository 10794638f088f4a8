public import Logging
public import PostgresNIO

/// Answers whether the database is usable right now, for readiness checks.
public struct DatabaseProbe: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    /// Creates a probe of `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Runs a trivial query.
    /// - Throws: the database's error when it cannot be run.
    public func ping() async throws {
        try await client.query("SELECT 1", logger: logger)
    }
}
