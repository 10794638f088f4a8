public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// Operator sessions (bearer tokens) in PostgreSQL. Logins and logouts are recorded in the audit log.
public struct OperatorSessionStore: Sendable {
    /// A stored session, as looked up by its token.
    public struct Session: Sendable, Equatable {
        /// The session's id (not its token), by which an administrator lists and revokes it.
        public var id: UUID
        /// The operator it belongs to.
        public var person: Operator
        /// Where its login came from.
        public var sourceAddress: String?
        /// When it was created.
        public var createdAt: Date
        /// When it stops being valid.
        public var expiresAt: Date
        /// When the directory last confirmed the account.
        public var checkedAt: Date

        /// A session as stored.
        public init(
            id: UUID, person: Operator, sourceAddress: String?, createdAt: Date, expiresAt: Date, checkedAt: Date
        ) {
            self.id = id
            self.person = person
            self.sourceAddress = sourceAddress
            self.createdAt = createdAt
            self.expiresAt = expiresAt
            self.checkedAt = checkedAt
        }
    }

    private let client: PostgresClient
    private let logger: Logger

    /// Creates a store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Stores the session of a successful login, and `event` (its `operator.login`) in the audit log in the same
    /// transaction: a login is recorded exactly when its session exists, whatever fails in between.
    /// - Parameter idleTimeout: for a console session, how long it may go unused before it ends; nil for none.
    public func createSession(
        token: OperatorToken,
        for person: Operator,
        sourceAddress: String?,
        expiresAt: Date,
        idleTimeout: Duration? = nil,
        recording event: AuditEvent? = nil
    ) async throws {
        let hash = ByteBuffer(bytes: token.hash)
        let idleSeconds = idleTimeout.map { Int32(clamping: $0.components.seconds) }
        try await client.withTransaction(logger: logger) { connection in
            if let event { try await AuditLog.append([event], on: connection, logger: logger) }
            try await connection.query(
                """
                INSERT INTO operator_sessions (token_hash, operator_dn, account, display_name, mail, title, department,
                    source_address, expires_at, idle_timeout_seconds)
                VALUES (\(hash), \(person.dn), \(person.account), \(person.displayName), \(person.mail),
                    \(person.title), \(person.department), \(sourceAddress), \(expiresAt), \(idleSeconds))
                """,
                logger: logger
            )
        }
    }

    /// The session of `token` if it exists, has not expired, was not revoked and, for a console session, was used
    /// within its idle timeout; that use is noted (at most once a minute, so that a busy console is not a write per
    /// request, and a bearer token, which has no idle timeout, never is).
    public func session(for token: OperatorToken) async throws -> Session? {
        let hash = ByteBuffer(bytes: token.hash)
        guard let (session, useNoteDue) = try await sessions(where: "token_hash = \(hash)").first else { return nil }
        if useNoteDue {
            try await client.query(
                """
                UPDATE operator_sessions SET used_at = now()
                WHERE token_hash = \(hash) AND idle_timeout_seconds IS NOT NULL
                """,
                logger: logger)
        }
        return session
    }

    /// Every live session (not expired, not revoked), newest first; only `operatorDN`'s when given (compared without
    /// case).
    public func liveSessions(of operatorDN: String? = nil) async throws -> [Session] {
        try await sessions(where: "(\(operatorDN)::text IS NULL OR lower(operator_dn) = lower(\(operatorDN)))").map(\.0)
    }

    /// The live session with `id`, if there is one.
    public func liveSession(id: UUID) async throws -> Session? {
        try await sessions(where: "id = \(id)").first?.0
    }

    /// The live sessions that meet `condition`, each with whether its use is due to be noted (a console session not
    /// noted as used within half its idle timeout, or a minute).
    private func sessions(where condition: PostgresQuery) async throws -> [(Session, Bool)] {
        var query: PostgresQuery = """
            SELECT id, operator_dn, account, display_name, mail, title, department, source_address, created_at,
                expires_at, checked_at,
                (idle_timeout_seconds IS NOT NULL
                    AND used_at < now() - least(interval '60 seconds', idle_timeout_seconds * interval '0.5 second'))
            FROM operator_sessions WHERE revoked_at IS NULL AND expires_at > now()
                AND (idle_timeout_seconds IS NULL OR used_at > now() - idle_timeout_seconds * interval '1 second') AND
            """
        query.sql += " " + condition.sql + " ORDER BY created_at DESC"
        query.binds = condition.binds
        let rows = try await client.query(query, logger: logger)
        var sessions: [(Session, Bool)] = []
        for try await (
            id, dn, account, displayName, mail, title, department, source, createdAt, expiresAt, checkedAt,
            useNoteDue
        )
            in rows.decode(
                (UUID, String, String, String, String?, String?, String?, String?, Date, Date, Date, Bool).self)
        {
            let person = Operator(
                dn: dn, account: account, displayName: displayName, mail: mail, title: title, department: department)
            sessions.append(
                (
                    Session(
                        id: id, person: person, sourceAddress: source, createdAt: createdAt, expiresAt: expiresAt,
                        checkedAt: checkedAt),
                    useNoteDue
                ))
        }
        return sessions
    }

    /// Notes that the directory confirmed the account of session `id` at `time`.
    public func markChecked(_ id: UUID, at time: Date) async throws {
        try await client.query("UPDATE operator_sessions SET checked_at = \(time) WHERE id = \(id)", logger: logger)
    }

    /// Revokes the live sessions with these ids, saying who did and why.
    /// - Returns: the sessions revoked (those already ended are left alone).
    @discardableResult
    public func revoke(ids: [UUID], by revoker: String, reason: String) async throws -> [UUID] {
        let rows = try await client.query(
            """
            UPDATE operator_sessions SET revoked_at = now(), revoked_by = \(revoker), revoke_reason = \(reason)
            WHERE id = ANY(\(ids)) AND revoked_at IS NULL AND expires_at > now()
            RETURNING id
            """,
            logger: logger
        )
        var revoked: [UUID] = []
        for try await id in rows.decode(UUID.self) { revoked.append(id) }
        return revoked
    }

    /// Stores a single-use login link for the live session `session`, whose code hashes to `codeHash`, that opens
    /// `target` until `expiresAt`; links that expired a while ago are removed on the way.
    public func createLoginLink(
        codeHash: [UInt8], session: UUID, target: String, expiresAt: Date
    ) async throws {
        let hash = ByteBuffer(bytes: codeHash)
        try await client.query(
            "DELETE FROM login_links WHERE expires_at < now() - interval '1 hour'", logger: logger)
        try await client.query(
            """
            INSERT INTO login_links (code_hash, session_id, target, expires_at)
            VALUES (\(hash), \(session), \(target), \(expiresAt))
            """,
            logger: logger)
    }

    /// Uses up the login link whose code hashes to `codeHash`: it is removed whatever follows, so it works once.
    /// - Returns: the live session that made it and the page it opens; nil when there is no such link, it expired,
    ///   or its session has ended since.
    public func redeemLoginLink(codeHash: [UInt8]) async throws -> (session: Session, target: String)? {
        let hash = ByteBuffer(bytes: codeHash)
        let rows = try await client.query(
            """
            DELETE FROM login_links WHERE code_hash = \(hash)
            RETURNING session_id, target, expires_at > now()
            """,
            logger: logger)
        var found: (UUID, String)?
        for try await (id, target, live) in rows.decode((UUID, String, Bool).self) where live { found = (id, target) }
        guard let (id, target) = found, let session = try await liveSession(id: id) else { return nil }
        return (session, target)
    }

    /// Revokes the session of `token`.
    /// - Returns: whether a live session was revoked.
    @discardableResult
    public func revoke(_ token: OperatorToken) async throws -> Bool {
        let hash = ByteBuffer(bytes: token.hash)
        let rows = try await client.query(
            """
            UPDATE operator_sessions SET revoked_at = now()
            WHERE token_hash = \(hash) AND revoked_at IS NULL
            RETURNING 1
            """,
            logger: logger
        )
        var revoked = false
        for try await _ in rows { revoked = true }
        return revoked
    }
}
