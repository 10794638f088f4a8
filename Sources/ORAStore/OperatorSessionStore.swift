public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// Operator sessions (bearer tokens) and the record of login attempts, in PostgreSQL.
public struct OperatorSessionStore: Sendable {
    /// A stored session, as looked up by its token.
    public struct Session: Sendable, Equatable {
        /// The operator it belongs to.
        public var person: Operator
        /// When it was created.
        public var createdAt: Date
        /// When it stops being valid.
        public var expiresAt: Date
    }

    /// What happened to a login attempt.
    public enum Outcome: String, Sendable {
        case success, failure, unavailable
        case rateLimited = "rate_limited"
        case logout
    }

    private let client: PostgresClient
    private let logger: Logger

    /// Creates a store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Records a successful login and stores its session, in one transaction: both or neither.
    public func createSession(
        token: OperatorToken,
        for person: Operator,
        userName: String,
        sourceAddress: String?,
        expiresAt: Date
    ) async throws {
        let hash = ByteBuffer(bytes: token.hash)
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO operator_sessions (token_hash, operator_dn, account, display_name, mail, source_address,
                    expires_at)
                VALUES (\(hash), \(person.dn), \(person.account), \(person.displayName), \(person.mail),
                    \(sourceAddress), \(expiresAt))
                """,
                logger: logger
            )
            try await Self.recordEvent(
                userName: userName, operatorDN: person.dn, sourceAddress: sourceAddress, outcome: .success,
                reason: nil, on: connection, logger: logger)
        }
    }

    /// The session of `token` if it exists, has not expired and was not revoked.
    public func session(for token: OperatorToken) async throws -> Session? {
        let hash = ByteBuffer(bytes: token.hash)
        let rows = try await client.query(
            """
            SELECT operator_dn, account, display_name, mail, created_at, expires_at
            FROM operator_sessions
            WHERE token_hash = \(hash) AND revoked_at IS NULL AND expires_at > now()
            """,
            logger: logger
        )
        for try await (dn, account, displayName, mail, createdAt, expiresAt) in rows.decode(
            (String, String, String, String?, Date, Date).self)
        {
            return Session(
                person: Operator(dn: dn, account: account, displayName: displayName, mail: mail),
                createdAt: createdAt, expiresAt: expiresAt)
        }
        return nil
    }

    /// Revokes the session of `token` and records the logout, in one transaction.
    /// - Returns: whether a live session was revoked.
    @discardableResult
    public func revoke(_ token: OperatorToken, sourceAddress: String?) async throws -> Bool {
        let hash = ByteBuffer(bytes: token.hash)
        return try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                UPDATE operator_sessions SET revoked_at = now()
                WHERE token_hash = \(hash) AND revoked_at IS NULL
                RETURNING account, operator_dn
                """,
                logger: logger
            )
            var revoked: (String, String)?
            for try await row in rows.decode((String, String).self) { revoked = row }
            guard let (account, dn) = revoked else { return false }
            try await Self.recordEvent(
                userName: account, operatorDN: dn, sourceAddress: sourceAddress, outcome: .logout, reason: nil,
                on: connection, logger: logger)
            return true
        }
    }

    /// Records a login attempt that did not create a session.
    public func recordAttempt(
        userName: String,
        outcome: Outcome,
        reason: String?,
        sourceAddress: String?
    ) async throws {
        try await client.withConnection { connection in
            try await Self.recordEvent(
                userName: userName, operatorDN: nil, sourceAddress: sourceAddress, outcome: outcome, reason: reason,
                on: connection, logger: logger)
        }
    }

    private static func recordEvent(
        userName: String,
        operatorDN: String?,
        sourceAddress: String?,
        outcome: Outcome,
        reason: String?,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO login_events (id, user_name, operator_dn, source_address, outcome, reason)
            VALUES (\(UUID()), \(userName), \(operatorDN), \(sourceAddress), \(outcome.rawValue), \(reason))
            """,
            logger: logger
        )
    }
}
