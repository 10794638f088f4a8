public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// Enrolled machines and the one-time tokens that enroll them, in PostgreSQL. Every change is appended to the
/// audit log in the same transaction, so a change and its record are stored together or not at all.
public struct MachineStore: Sendable {
    /// A machine as enrolled.
    public struct Machine: Sendable, Hashable {
        /// The machine's name, lower case.
        public var name: String
        /// The distinguished name of its computer object in the directory.
        public var computerDN: String
        /// Its device public key (`DevicePublicKey` text).
        public var publicKey: String
        /// What the agent reported as its operating system.
        public var operatingSystem: String
        /// What the agent reported as its version.
        public var agentVersion: String
        /// When it (last) enrolled.
        public var enrolledAt: Date
        /// Who created the token it enrolled with (an administrator's DN).
        public var enrolledBy: String
        /// When an administrator revoked it, if one did.
        public var revokedAt: Date?
        /// Which administrator revoked it.
        public var revokedBy: String?
        /// When its agent was last connected.
        public var lastSeenAt: Date?

        /// Creates a machine record.
        public init(
            name: String,
            computerDN: String,
            publicKey: String,
            operatingSystem: String,
            agentVersion: String,
            enrolledAt: Date,
            enrolledBy: String = "",
            revokedAt: Date? = nil,
            revokedBy: String? = nil,
            lastSeenAt: Date? = nil
        ) {
            self.name = name
            self.computerDN = computerDN
            self.publicKey = publicKey
            self.operatingSystem = operatingSystem
            self.agentVersion = agentVersion
            self.enrolledAt = enrolledAt
            self.enrolledBy = enrolledBy
            self.revokedAt = revokedAt
            self.revokedBy = revokedBy
            self.lastSeenAt = lastSeenAt
        }
    }

    /// What enrolling did.
    public enum EnrollmentOutcome: Sendable, Hashable {
        /// The machine is new.
        case enrolled
        /// The machine was enrolled before; its key (shown) was replaced and any revocation lifted.
        case reenrolled(previousKey: String)
    }

    /// Why an enrollment was refused.
    public enum EnrollmentError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The token is unknown, used up or expired; which of these is not told, so a guess learns nothing.
        case invalidToken

        public var description: String { "the enrollment token is not valid: unknown, used up or expired" }
    }

    private let client: PostgresClient
    private let logger: Logger

    /// Creates a store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    // MARK: Enrollment tokens

    /// Stores a new enrollment token, good for `uses` enrollments until `expiresAt`, and its audit event.
    public func createToken(
        _ token: EnrollmentToken,
        createdBy administrator: String,
        expiresAt: Date,
        uses: Int,
        comment: String?,
        auditEvent: AuditEvent
    ) async throws {
        precondition(uses > 0, "a token is good for at least one enrollment")
        let hash = ByteBuffer(bytes: token.hash)
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO enrollment_tokens (token_hash, created_by, expires_at, uses_left, comment)
                VALUES (\(hash), \(administrator), \(expiresAt), \(Int32(clamping: uses)), \(comment))
                """,
                logger: logger
            )
            try await AuditLog.append([auditEvent], on: connection, logger: logger)
        }
    }

    // MARK: Machines

    /// Uses one of `token`'s enrollments to enroll `machine`, replacing the key of an earlier enrollment of the
    /// same name, and appends the audit event in the same transaction.
    /// - Parameters:
    ///   - machine: the machine, already checked against the directory; its `enrolledBy` is filled in from the
    ///     token.
    ///   - auditEvent: the `agent.enrolled` event, given the token's creator and what enrolling did.
    /// - Throws: `EnrollmentError.invalidToken` when the token is unknown, used up or expired at `time`; nothing
    ///   changes.
    @discardableResult
    public func enroll(
        _ machine: Machine,
        with token: EnrollmentToken,
        at time: Date,
        auditEvent: @Sendable (_ tokenCreator: String, _ outcome: EnrollmentOutcome) -> AuditEvent
    ) async throws -> EnrollmentOutcome {
        let hash = ByteBuffer(bytes: token.hash)
        return try await client.withTransaction(logger: logger, passingThrough: EnrollmentError.self) {
            connection in
            let used = try await connection.query(
                """
                UPDATE enrollment_tokens SET uses_left = uses_left - 1
                WHERE token_hash = \(hash) AND uses_left > 0 AND expires_at > \(time)
                RETURNING created_by
                """,
                logger: logger
            )
            var creator: String?
            for try await value in used.decode(String.self) { creator = value }
            guard let creator else { throw EnrollmentError.invalidToken }
            let previous = try await connection.query(
                "SELECT public_key FROM machines WHERE name = \(machine.name) FOR UPDATE", logger: logger)
            var previousKey: String?
            for try await value in previous.decode(String.self) { previousKey = value }
            try await connection.query(
                """
                INSERT INTO machines (name, computer_dn, public_key, operating_system, agent_version, enrolled_at,
                    enrolled_by)
                VALUES (\(machine.name), \(machine.computerDN), \(machine.publicKey), \(machine.operatingSystem),
                    \(machine.agentVersion), \(machine.enrolledAt), \(creator))
                ON CONFLICT (name) DO UPDATE SET computer_dn = excluded.computer_dn,
                    public_key = excluded.public_key, operating_system = excluded.operating_system,
                    agent_version = excluded.agent_version, enrolled_at = excluded.enrolled_at,
                    enrolled_by = excluded.enrolled_by, revoked_at = NULL, revoked_by = NULL
                """,
                logger: logger
            )
            let outcome: EnrollmentOutcome = previousKey.map { .reenrolled(previousKey: $0) } ?? .enrolled
            try await AuditLog.append([auditEvent(creator, outcome)], on: connection, logger: logger)
            return outcome
        }
    }

    /// The machine called `name` (lower case), revoked or not.
    public func machine(named name: String) async throws -> Machine? {
        try await client.withConnection { connection in
            try await Self.machines(named: name, on: connection, logger: logger).first
        }
    }

    /// Every enrolled machine, by name.
    public func machines() async throws -> [Machine] {
        try await client.withConnection { connection in
            try await Self.machines(named: nil, on: connection, logger: logger)
        }
    }

    /// Revokes the machine called `name`: its agent can no longer connect until it enrolls again with a new token.
    /// - Returns: `false` when no such machine is enrolled or it is already revoked; nothing is recorded then.
    public func revoke(
        _ name: String,
        by administrator: String,
        at time: Date,
        auditEvent: AuditEvent
    ) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                UPDATE machines SET revoked_at = \(time), revoked_by = \(administrator)
                WHERE name = \(name) AND revoked_at IS NULL
                RETURNING name
                """,
                logger: logger
            )
            var revoked = false
            for try await _ in rows.decode(String.self) { revoked = true }
            if revoked { try await AuditLog.append([auditEvent], on: connection, logger: logger) }
            return revoked
        }
    }

    /// The machine called `name`, or every machine when `name` is `nil`, by name.
    private static func machines(
        named name: String?,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Machine] {
        let query: PostgresQuery = """
            SELECT name, computer_dn, public_key, operating_system, agent_version, enrolled_at, enrolled_by,
                revoked_at, revoked_by, last_seen_at
            FROM machines WHERE \(name)::text IS NULL OR name = \(name)
            ORDER BY name
            """
        let rows = try await connection.query(query, logger: logger)
        var machines: [Machine] = []
        for try await row in rows.decode(
            (String, String, String, String, String, Date, String, Date?, String?, Date?).self)
        {
            machines.append(
                Machine(
                    name: row.0, computerDN: row.1, publicKey: row.2, operatingSystem: row.3, agentVersion: row.4,
                    enrolledAt: row.5, enrolledBy: row.6, revokedAt: row.7, revokedBy: row.8, lastSeenAt: row.9))
        }
        return machines
    }
}
