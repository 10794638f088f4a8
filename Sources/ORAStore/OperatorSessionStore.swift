public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// Operator sessions (bearer tokens) in PostgreSQL. Logins and logouts are recorded in the audit log.
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

    private let client: PostgresClient
    private let logger: Logger

    /// Creates a store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Stores the session of a successful login.
    public func createSession(
        token: OperatorToken,
        for person: Operator,
        sourceAddress: String?,
        expiresAt: Date
    ) async throws {
        let hash = ByteBuffer(bytes: token.hash)
        _ = try await client.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO operator_sessions (token_hash, operator_dn, account, display_name, mail, source_address,
                    expires_at)
                VALUES (\(hash), \(person.dn), \(person.account), \(person.displayName), \(person.mail),
                    \(sourceAddress), \(expiresAt))
                """,
                logger: logger
            )
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
