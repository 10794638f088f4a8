public import Foundation
public import Logging
public import PostgresNIO

/// Records which ora-server replicas are running, so operators can see them in one table.
public struct ServerInstanceRegistry: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    /// Creates a registry on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Inserts or refreshes the row of this instance.
    public func heartbeat(id: UUID, host: String, processID: Int, version: String, startedAt: Date) async throws {
        try await client.query(
            """
            INSERT INTO server_instances (id, host, process_id, version, started_at, last_seen_at)
            VALUES (\(id), \(host), \(processID), \(version), \(startedAt), now())
            ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
            """,
            logger: logger
        )
    }

    /// Removes the row of an instance that is shutting down.
    public func remove(id: UUID) async throws {
        try await client.query("DELETE FROM server_instances WHERE id = \(id)", logger: logger)
    }
}
