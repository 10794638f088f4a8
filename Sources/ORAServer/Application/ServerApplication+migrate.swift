public import Logging
import ORAStore
import PostgresNIO

extension ServerApplication {
    /// Connects to the database, applies missing migrations, and disconnects.
    /// - Returns: the versions applied.
    public static func migrate(configuration: ServerConfiguration, logger: Logger) async throws -> [Int] {
        let client = PostgresClient(
            configuration: try configuration.database.clientConfiguration(), backgroundLogger: logger)
        let probe = DatabaseProbe(configuration: try configuration.database.probeConfiguration(), logger: logger)
        return try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await prepareDatabase(client: client, probe: probe, logger: logger)
        }
    }

    /// Checks the database with a direct connection, which fails fast with the real reason (the pool would retry
    /// for a minute first), then brings the schema up to date.
    /// - Returns: the versions applied.
    @discardableResult
    static func prepareDatabase(client: PostgresClient, probe: DatabaseProbe, logger: Logger) async throws -> [Int] {
        try await probe.ping()
        let applied = try await Migrator(client: client, logger: logger).migrate()
        logger.info("database schema is current", metadata: ["migrations.applied": "\(applied.count)"])
        return applied
    }
}
