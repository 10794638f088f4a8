public import Logging
import ORAStore
import PostgresNIO

extension ServerApplication {
    /// Connects to the database, applies missing migrations, and disconnects.
    /// - Returns: the versions applied.
    public static func migrate(configuration: ServerConfiguration, logger: Logger) async throws -> [Int] {
        try await DatabaseProbe(configuration: try postgresProbeConfiguration(configuration.database), logger: logger)
            .ping()
        let client = PostgresClient(
            configuration: try postgresConfiguration(configuration.database), backgroundLogger: logger)
        return try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await Migrator(client: client, logger: logger).migrate()
        }
    }
}
