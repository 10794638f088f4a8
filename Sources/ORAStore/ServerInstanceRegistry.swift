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

    /// Inserts or refreshes the row of this instance, with where the other replicas reach its relay port (nil
    /// until it listens, or when they cannot) and the SHA-256 of its TLS key (nil for plain TCP).
    public func heartbeat(
        id: UUID, host: String, processID: Int, version: String, startedAt: Date, relayAddress: String? = nil,
        relayKey: String? = nil
    ) async throws {
        try await client.query(
            """
            INSERT INTO server_instances (id, host, process_id, version, started_at, last_seen_at, relay_address,
                relay_key_sha256)
            VALUES (\(id), \(host), \(processID), \(version), \(startedAt), now(), \(relayAddress), \(relayKey))
            ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), relay_address = EXCLUDED.relay_address,
                relay_key_sha256 = EXCLUDED.relay_key_sha256
            """,
            logger: logger
        )
    }

    /// Removes the row of an instance that is shutting down.
    public func remove(id: UUID) async throws {
        try await client.query("DELETE FROM server_instances WHERE id = \(id)", logger: logger)
    }
}
