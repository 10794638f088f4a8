public import Logging
public import ORACore
public import PostgresNIO

/// How far the audit log has been forwarded to each collector (`audit_forwarding`), and the lock that lets one
/// replica forward at a time.
public struct AuditForwarding: Sendable {
    /// The advisory lock key of the forwarding replica ("ora_fwd!" in ASCII).
    static let lockKey: Int64 = 0x6f72_615f_6677_6421

    /// What the forwarding replica reads and confirms, on the connection that holds the lock. Valid only inside
    /// `whileLeader`.
    public struct Cursor: Sendable {
        let connection: PostgresConnection
        /// The collector, as `audit_forwarding` names it.
        public let destination: String
        let logger: Logger

        /// The sequence of the last event the collector is known to have received; 0 for a new collector.
        public func confirmed() async throws -> Int64 {
            try await connection.query(
                """
                INSERT INTO audit_forwarding (destination, sequence) VALUES (\(destination), 0)
                ON CONFLICT DO NOTHING
                """,
                logger: logger)
            let rows = try await connection.query(
                "SELECT sequence FROM audit_forwarding WHERE destination = \(destination)", logger: logger)
            var confirmed: Int64 = 0
            for try await value in rows.decode(Int64.self) { confirmed = value }
            return confirmed
        }

        /// Up to `limit` events after the sequence `after`, oldest first.
        public func events(after sequence: Int64, limit: Int) async throws -> [ChainedAuditEvent] {
            try await AuditLog.events(after: sequence, limit: limit, on: connection, logger: logger)
        }

        /// Records that the collector has received everything up to `sequence`.
        public func confirm(_ sequence: Int64) async throws {
            try await connection.query(
                """
                UPDATE audit_forwarding SET sequence = \(sequence), updated_at = now()
                WHERE destination = \(destination)
                """,
                logger: logger)
        }
    }

    private let client: PostgresClient
    private let logger: Logger

    /// Creates the store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Takes the forwarding lock on a connection of its own and runs `body` while holding it; the lock is released
    /// when `body` ends, however it ends.
    /// - Returns: what `body` returned, or nil (without running it) when another replica holds the lock.
    public func whileLeader<Result: Sendable>(
        forwardingTo destination: String,
        _ body: (Cursor) async throws -> Result
    ) async throws -> Result? {
        try await client.withConnection { connection in
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: logger)
            var locked = false
            for try await value in rows.decode(Bool.self) { locked = value }
            guard locked else { return nil }
            let result: Result
            do {
                result = try await body(Cursor(connection: connection, destination: destination, logger: logger))
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            return result
        }
    }
}
