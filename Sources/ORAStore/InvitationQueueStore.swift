public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// The helpdesk's queue of invitations in PostgreSQL, shared by every replica: what the people at machines sent,
/// who took each (exactly one helper: the first), and who watches the queue.
public struct InvitationQueueStore: Sendable {
    /// An invitation in the queue.
    public struct Entry: Sendable, Equatable {
        public var id: UUID
        /// The machine, as enrolled.
        public var machine: String
        /// The invitation file's content, as the machine signed it.
        public var invitation: String
        /// Who asked, as the invitation names them.
        public var askedBy: String
        public var message: String?
        public var createdAt: Date
        public var expiresAt: Date
        /// When it reached the queue.
        public var postedAt: Date
        /// `open`, `taken` or `withdrawn`.
        public var state: String
        /// The helper who took it.
        public var takenByDN: String?
        public var takenByName: String?
        public var takenAt: Date?
        /// Why it left the queue without being taken (`revoked`, `expired`).
        public var withdrawnReason: String?

        public init(
            id: UUID, machine: String, invitation: String, askedBy: String, message: String?, createdAt: Date,
            expiresAt: Date, postedAt: Date = Date(), state: String = "open", takenByDN: String? = nil,
            takenByName: String? = nil, takenAt: Date? = nil, withdrawnReason: String? = nil
        ) {
            self.id = id
            self.machine = machine
            self.invitation = invitation
            self.askedBy = askedBy
            self.message = message
            self.createdAt = createdAt
            self.expiresAt = expiresAt
            self.postedAt = postedAt
            self.state = state
            self.takenByDN = takenByDN
            self.takenByName = takenByName
            self.takenAt = takenAt
            self.withdrawnReason = withdrawnReason
        }
    }

    /// A helper who watches the queue, or watched it while still logged in.
    public struct Watcher: Sendable, Equatable {
        public var operatorDN: String
        /// Their groups when they started watching, which policy is decided on.
        public var groups: [String]
        /// Watching now, on a running replica.
        public var watching: Bool
        /// Helping in a session now.
        public var busy: Bool
    }

    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Adds `entry` to the queue, open.
    /// - Returns: whether it was added (false: an invitation with its id is there already, and is left as it is).
    public func post(_ entry: Entry) async throws -> Bool {
        let rows = try await client.query(
            """
            INSERT INTO invitation_queue (id, machine, invitation, asked_by, message, created_at, expires_at)
            VALUES (\(entry.id), \(entry.machine), \(entry.invitation), \(entry.askedBy), \(entry.message),
                \(entry.createdAt), \(entry.expiresAt))
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """, logger: logger)
        for try await _ in rows.decode(UUID.self) { return true }
        return false
    }

    /// The open invitations that have not expired, oldest first.
    public func open() async throws -> [Entry] {
        try await entries(where: "state = 'open' AND expires_at > now() ORDER BY posted_at")
    }

    /// How many open invitations that have not expired `machine` has in the queue.
    public func openCount(of machine: String) async throws -> Int {
        let rows = try await client.query(
            """
            SELECT count(*)::integer FROM invitation_queue
            WHERE machine = \(machine) AND state = 'open' AND expires_at > now()
            """, logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    /// The invitation `id`, in whatever state.
    public func entry(_ id: UUID) async throws -> Entry? {
        try await entries(where: "id = \(id)").first
    }

    /// Gives the open invitation `id` to the helper `dn`, unless someone took it first, and records `event` (its
    /// `invitation.claimed`) in the audit log in the same transaction: one statement decides, so that of helpers
    /// taking it at the same moment on any replicas exactly one gets it, and a take is recorded exactly when it
    /// happened.
    /// - Returns: whether this helper got it, and the invitation as it is now (`nil`: there is no such invitation).
    public func take(
        _ id: UUID, by dn: String, name: String, recording event: AuditEvent
    ) async throws -> (taken: Bool, entry: Entry?) {
        let taken = try await client.withTransaction(logger: logger) { connection -> Entry? in
            var query: PostgresQuery = """
                UPDATE invitation_queue SET state = 'taken', taken_by_dn = \(dn), taken_by_name = \(name),
                    taken_at = now()
                WHERE id = \(id) AND state = 'open' AND expires_at > now()
                """
            query.sql += " RETURNING " + Self.columns
            guard let entry = try await decode(connection.query(query, logger: logger)).first else { return nil }
            try await AuditLog.append([event], on: connection, logger: logger)
            return entry
        }
        if let taken { return (true, taken) }
        return (false, try await entry(id))
    }

    /// Takes the open invitation `id` out of the queue (`reason`: `revoked` or `expired`).
    /// - Returns: whether it was open.
    public func withdraw(_ id: UUID, reason: String) async throws -> Bool {
        try await !entries(
            update: """
                UPDATE invitation_queue SET state = 'withdrawn', withdrawn_reason = \(reason)
                WHERE id = \(id) AND state = 'open'
                """
        ).isEmpty
    }

    /// Notes that the helper `dn`, logged in as `session`, with `groups`, watches the queue through `instance`.
    public func watch(
        _ id: UUID, instance: UUID, operatorDN dn: String, session: UUID, groups: [String]
    ) async throws {
        try await client.withTransaction(logger: logger) { connection in
            // What this session watched before is superseded; watches ended long ago are forgotten.
            try await connection.query(
                """
                DELETE FROM queue_watchers
                WHERE (operator_session = \(session) AND ended_at IS NOT NULL) OR ended_at < now() - interval '1 day'
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO queue_watchers (id, instance, operator_dn, operator_session, groups)
                VALUES (\(id), \(instance), \(dn), \(session), \(groups))
                """, logger: logger)
        }
    }

    /// Notes that the watch `id` ended.
    public func unwatch(_ id: UUID) async throws {
        try await client.query("UPDATE queue_watchers SET ended_at = now() WHERE id = \(id)", logger: logger)
    }

    /// The helpers who watch the queue now or watched it and are still logged in, each with whether they are in a
    /// session now. A watch on a replica that stopped counts as ended.
    public func watchers() async throws -> [Watcher] {
        let rows = try await client.query(
            """
            SELECT w.operator_dn, w.groups,
                w.ended_at IS NULL AND i.last_seen_at > now() - interval '45 seconds',
                EXISTS (SELECT 1 FROM sessions s WHERE lower(s.helper_dn) = lower(w.operator_dn) AND NOT s.ended)
            FROM queue_watchers w
            JOIN operator_sessions o ON o.id = w.operator_session
            LEFT JOIN server_instances i ON i.id = w.instance
            WHERE o.revoked_at IS NULL AND o.expires_at > now()
                AND (o.idle_timeout_seconds IS NULL OR o.used_at > now() - o.idle_timeout_seconds * interval '1 second')
            """, logger: logger)
        var watchers: [Watcher] = []
        for try await (dn, groups, watching, busy) in rows.decode((String, [String], Bool?, Bool).self) {
            watchers.append(Watcher(operatorDN: dn, groups: groups, watching: watching ?? false, busy: busy))
        }
        return watchers
    }

    private static let columns = """
        id, machine, invitation, asked_by, message, created_at, expires_at, posted_at, state, taken_by_dn,
        taken_by_name, taken_at, withdrawn_reason
        """

    private func entries(where condition: PostgresQuery) async throws -> [Entry] {
        var query: PostgresQuery = "SELECT "
        query.sql += Self.columns + " FROM invitation_queue WHERE " + condition.sql
        query.binds = condition.binds
        return try await decode(client.query(query, logger: logger))
    }

    private func entries(update: PostgresQuery) async throws -> [Entry] {
        var query = update
        query.sql += " RETURNING " + Self.columns
        return try await decode(client.query(query, logger: logger))
    }

    private func decode(_ rows: PostgresRowSequence) async throws -> [Entry] {
        var entries: [Entry] = []
        for try await (
            id, machine, invitation, askedBy, message, createdAt, expiresAt, postedAt, state, takenByDN, takenByName,
            takenAt, withdrawnReason
        ) in rows.decode(
            (UUID, String, String, String, String?, Date, Date, Date, String, String?, String?, Date?, String?).self)
        {
            entries.append(
                Entry(
                    id: id, machine: machine, invitation: invitation, askedBy: askedBy, message: message,
                    createdAt: createdAt, expiresAt: expiresAt, postedAt: postedAt, state: state,
                    takenByDN: takenByDN, takenByName: takenByName, takenAt: takenAt,
                    withdrawnReason: withdrawnReason))
        }
        return entries
    }
}
