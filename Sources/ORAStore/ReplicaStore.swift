public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// What replicas of ora-server share about agent connections and sessions, so that any replica can answer for a
/// machine whose agent is connected to another: which replica holds each agent, a copy of every session's state
/// written by the replica that runs it, and the NOTIFY channels they talk over.
///
/// A replica counts as running while its row in `server_instances` is fresher than `livenessWindow`; connections
/// and sessions of a replica that stopped beating are treated as gone.
public struct ReplicaStore: Sendable {
    /// The channel on which replicas announce that a session changed (the payload is its id).
    public static let sessionsChannel = "ora_sessions"
    /// How an announcement on `sessionsChannel` that an operator's session changed starts (then the session's id);
    /// the database makes it (trigger `operator_sessions_changed`).
    public static let operatorSessionPrefix = "login:"
    /// How long after its last heartbeat a replica still counts as running.
    public static let livenessWindow = "45 seconds"

    /// The channel a replica receives calls and answers on.
    public static func channel(of instance: UUID) -> String {
        "ora_replica_" + instance.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// A session as its replica last wrote it.
    public struct StoredSession: Sendable, Hashable {
        /// The session's id.
        public var id: UUID
        /// The replica that runs it.
        public var instance: UUID
        /// Whether it has ended.
        public var ended: Bool
        /// Whether the replica that runs it is still running.
        public var instanceAlive: Bool
        /// Its state as JSON, as the replica wrote it.
        public var snapshot: String
    }

    private let client: PostgresClient
    private let logger: Logger

    /// Creates the store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// What a replica hears from the others.
    public enum Message: Sendable, Hashable {
        /// A call or an answer addressed to this replica (the payload as sent).
        case addressed(String)
        /// Some replica changed the session with this id (the payload as sent: a UUID, unless a sender is broken).
        case sessionChanged(String)
    }

    /// Listens on `instance`'s channel and on the sessions channel, on one connection of its own, and runs `body`
    /// with the messages that arrive on either after it starts. The sequence throws when the connection breaks.
    public func withMessages<Result: Sendable>(
        for instance: UUID,
        _ body: @Sendable (AsyncThrowingMapSequence<DatabaseNotifications, Message>) async throws -> Result
    ) async throws -> Result {
        try await client.listen(to: [Self.channel(of: instance), Self.sessionsChannel]) { notifications in
            try await body(
                notifications.map { notification in
                    notification.channel == Self.sessionsChannel
                        ? .sessionChanged(notification.payload) : .addressed(notification.payload)
                })
        }
    }

    /// The replicas running now (their rows fresher than `livenessWindow`).
    public func runningInstances() async throws -> [UUID] {
        let rows = try await client.query(
            "SELECT id FROM server_instances WHERE last_seen_at > now() - \(Self.livenessWindow)::interval",
            logger: logger)
        var instances: [UUID] = []
        for try await id in rows.decode(UUID.self) { instances.append(id) }
        return instances
    }

    /// Notes that `machine`'s agent is connected to `instance` since `time`.
    public func recordConnection(of machine: String, to instance: UUID, at time: Date) async throws {
        _ = try await client.query(
            "UPDATE machines SET connected_instance = \(instance), last_seen_at = \(time) WHERE name = \(machine)",
            logger: logger)
    }

    /// Notes that `machine`'s agent left `instance` at `time`; a newer connection to another replica is kept.
    public func recordDisconnection(of machine: String, from instance: UUID, at time: Date) async throws {
        _ = try await client.query(
            """
            UPDATE machines SET connected_instance = NULL, last_seen_at = \(time)
            WHERE name = \(machine) AND connected_instance = \(instance)
            """,
            logger: logger)
    }

    /// The running replica `machine`'s agent is connected to, if any.
    public func connectedInstance(of machine: String) async throws -> UUID? {
        let rows = try await client.query(
            """
            SELECT m.connected_instance FROM machines m
            JOIN server_instances i ON i.id = m.connected_instance
            WHERE m.name = \(machine) AND i.last_seen_at > now() - \(Self.livenessWindow)::interval
            """,
            logger: logger)
        for try await instance in rows.decode(UUID.self) { return instance }
        return nil
    }

    /// Where the running replica whose id begins with `prefix` (lowercase hex digits) reaches its relay port, and
    /// the SHA-256 of its TLS key; nil when none does, it has not said, or more than one replica's id begins so.
    public func relay(ofInstanceBeginning prefix: String) async throws -> (address: String, keySHA256: String?)? {
        let rows = try await client.query(
            """
            SELECT relay_address, relay_key_sha256 FROM server_instances
            WHERE starts_with(id::text, \(prefix)) AND relay_address IS NOT NULL
                AND last_seen_at > now() - \(Self.livenessWindow)::interval
            LIMIT 2
            """,
            logger: logger)
        var found: [(String, String?)] = []
        for try await (address, key) in rows.decode((String, String?).self) { found.append((address, key)) }
        return found.count == 1 ? found[0] : nil
    }

    /// Sends `payload` (at most 8,000 bytes) on `channel`.
    public func notify(_ channel: String, _ payload: String) async throws {
        _ = try await client.query("SELECT pg_notify(\(channel), \(payload))", logger: logger)
    }

    /// Sends each of `payloads` (each at most 8,000 bytes) on `channel`, in order, in one statement: listeners get
    /// them as separate notifications, in this order (identical payloads would arrive once).
    public func notify(_ channel: String, _ payloads: [String]) async throws {
        _ = try await client.query(
            "SELECT pg_notify(\(channel), payload) FROM unnest(\(payloads)::text[]) WITH ORDINALITY AS p(payload, n)",
            logger: logger)
    }

    /// Writes the state of a session `instance` runs, unless a later revision is already stored. A session that
    /// has ended stays ended, whoever writes after.
    public func saveSession(
        _ id: UUID, machine: String, helperDN: String, instance: UUID, revision: Int, ended: Bool, snapshot: String
    ) async throws {
        _ = try await client.query(
            """
            INSERT INTO sessions (id, machine, helper_dn, instance, ended, revision, snapshot, updated_at)
            VALUES (\(id), \(machine), \(helperDN), \(instance), \(ended), \(revision), \(snapshot)::jsonb, now())
            ON CONFLICT (id) DO UPDATE
            SET ended = excluded.ended, revision = excluded.revision, snapshot = excluded.snapshot, updated_at = now()
            WHERE NOT sessions.ended AND sessions.revision < excluded.revision
            """,
            logger: logger)
    }

    /// The session `id`, if a replica wrote it.
    public func session(_ id: UUID) async throws -> StoredSession? {
        let rows = try await client.query(
            """
            SELECT s.id, s.instance, s.ended, \(unescaped: Self.aliveExpression), s.snapshot::text FROM sessions s
            WHERE s.id = \(id)
            """,
            logger: logger)
        return try await Self.decode(rows).first
    }

    /// The sessions of other replicas than `instance` that have not ended or changed after `since`, newest first.
    public func sessions(notOn instance: UUID, changedSince since: Date) async throws -> [StoredSession] {
        let rows = try await client.query(
            """
            SELECT s.id, s.instance, s.ended, \(unescaped: Self.aliveExpression), s.snapshot::text FROM sessions s
            WHERE s.instance <> \(instance) AND (NOT s.ended OR s.updated_at > \(since))
            ORDER BY s.updated_at DESC LIMIT 1000
            """,
            logger: logger)
        return try await Self.decode(rows)
    }

    /// Ends, for this caller alone, up to `limit` sessions that have not ended although the replica running them
    /// stopped. In one transaction each is marked ended with the state `ending` gives and its event is appended to
    /// the audit log, so a session is never ended without its record, nor recorded twice by two replicas.
    /// - Parameter ending: the event and final state (JSON) for a session; `nil` leaves it alone.
    /// - Returns: the ids of the sessions ended.
    public func endOrphanedSessions(
        limit: Int = 100,
        ending: @Sendable (StoredSession) -> (event: AuditEvent, snapshot: String)?
    ) async throws -> [UUID] {
        try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT s.id, s.instance, s.ended, false, s.snapshot::text FROM sessions s
                WHERE NOT s.ended AND NOT \(unescaped: Self.aliveExpression)
                FOR UPDATE SKIP LOCKED LIMIT \(limit)
                """,
                logger: logger)
            var events: [AuditEvent] = []
            var ended: [UUID] = []
            for orphan in try await Self.decode(rows) {
                guard let (event, snapshot) = ending(orphan) else { continue }
                _ = try await connection.query(
                    """
                    UPDATE sessions SET ended = true, snapshot = \(snapshot)::jsonb, updated_at = now()
                    WHERE id = \(orphan.id)
                    """,
                    logger: logger)
                events.append(event)
                ended.append(orphan.id)
            }
            try await AuditLog.append(events, on: connection, logger: logger)
            return ended
        }
    }

    /// Forgets ended sessions last changed before `date`; the audit log keeps their history.
    public func pruneSessions(endedBefore date: Date) async throws {
        _ = try await client.query(
            "DELETE FROM sessions WHERE ended AND updated_at < \(date)", logger: logger)
    }

    private static let aliveExpression = """
        EXISTS (SELECT 1 FROM server_instances i WHERE i.id = s.instance \
        AND i.last_seen_at > now() - interval '\(livenessWindow)')
        """

    private static func decode(_ rows: PostgresRowSequence) async throws -> [StoredSession] {
        var sessions: [StoredSession] = []
        for try await row in rows.decode((UUID, UUID, Bool, Bool, String).self) {
            sessions.append(
                StoredSession(id: row.0, instance: row.1, ended: row.2, instanceAlive: row.3, snapshot: row.4))
        }
        return sessions
    }
}
