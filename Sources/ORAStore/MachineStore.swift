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
        /// The last report of `ora-agent doctor` on it (JSON), and when the doctor ran.
        public var doctorReport: String?
        public var doctorReportedAt: Date?

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
            lastSeenAt: Date? = nil,
            doctorReport: String? = nil,
            doctorReportedAt: Date? = nil
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
            self.doctorReport = doctorReport
            self.doctorReportedAt = doctorReportedAt
        }
    }

    /// A machine's enrollment as the database has it now: its device key, and whether it is revoked.
    public struct Enrollment: Sendable, Hashable {
        /// The device key enrolled, as `DevicePublicKey.text` writes it.
        public var publicKey: String
        /// Whether an administrator revoked the machine.
        public var revoked: Bool

        /// Creates an enrollment.
        public init(publicKey: String, revoked: Bool) {
            self.publicKey = publicKey
            self.revoked = revoked
        }

        /// Why an agent that proved `key` when it connected may no longer act for the machine enrolled as
        /// `enrollment` (`nil`: no longer enrolled at all); `nil` when it may.
        public static func change(since key: String, to enrollment: Enrollment?) -> EnrollmentChange? {
            guard let enrollment, !enrollment.revoked else { return .machineRevoked }
            return enrollment.publicKey == key ? nil : .keyReplaced
        }
    }

    /// How a machine's enrollment changed behind a connection's back; the raw value is the reason recorded.
    public enum EnrollmentChange: String, Sendable, Hashable {
        /// Revoked, or removed.
        case machineRevoked = "machine_revoked"
        /// Re-keyed: another device key is enrolled now.
        case keyReplaced = "key_replaced"
    }

    /// What enrolling did.
    public enum EnrollmentOutcome: Sendable, Hashable {
        /// The machine is new.
        case enrolled
        /// An administrator's re-key token replaced the key shown; a revocation, if there was one, is lifted.
        case rekeyed(previousKey: String, wasRevoked: Bool)
    }

    /// A valid token, as stored: what it may enroll and who made it.
    public struct TokenGrant: Sendable, Hashable {
        /// What the token may enroll.
        public var binding: EnrollmentBinding
        /// Whether it is an administrator's re-key of an enrolled or revoked machine.
        public var rekey: Bool
        /// The administrator who made it.
        public var createdBy: String
    }

    /// Why an enrollment was refused.
    public enum EnrollmentError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The token is unknown, used up, expired or revoked; which of these is not told, so a guess learns
        /// nothing.
        case invalidToken
        /// The name is enrolled already (or was, and is revoked); only an administrator's re-key token replaces
        /// its key.
        case alreadyEnrolled(revoked: Bool)

        public var description: String {
            switch self {
            case .invalidToken:
                "the enrollment token is not valid: unknown, used up, expired or revoked"
            case .alreadyEnrolled(let revoked):
                "the machine is \(revoked ? "revoked" : "enrolled already"); only an administrator's re-key replaces its key"
            }
        }
    }

    let client: PostgresClient
    let logger: Logger

    /// Creates a store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    // MARK: Enrollment tokens

    /// Stores a new enrollment token, good for `uses` enrollments of what `binding` allows until `expiresAt`, and
    /// its audit event.
    /// - Parameter rekey: whether the token may replace the key of the enrolled or revoked machine it is bound to
    ///   (an administrator's re-key: one machine, one use).
    public func createToken(
        _ token: EnrollmentToken,
        binding: EnrollmentBinding,
        rekey: Bool = false,
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
                INSERT INTO enrollment_tokens (token_hash, created_by, expires_at, uses_left, comment, bound_kind,
                    bound_to, rekey)
                VALUES (\(hash), \(administrator), \(expiresAt), \(Int32(clamping: uses)), \(comment),
                    \(binding.kind), \(binding.value), \(rekey))
                """,
                logger: logger
            )
            try await AuditLog.append([auditEvent], on: connection, logger: logger)
        }
    }

    /// An enrollment token as the register keeps it: never the token, only what it is for and what is left of it.
    public struct TokenRecord: Sendable, Equatable {
        /// Its id, by which an administrator revokes it.
        public var id: UUID
        /// What it may enroll.
        public var binding: EnrollmentBinding
        /// Whether it is an administrator's re-key.
        public var rekey: Bool
        /// The DN of the administrator who made it.
        public var createdBy: String
        public var createdAt: Date
        public var expiresAt: Date
        /// How many enrollments it has left (none once revoked).
        public var usesLeft: Int
        public var comment: String?
        /// When and by whom it was revoked, if it was.
        public var revokedAt: Date?
        public var revokedBy: String?
    }

    /// The tokens still good at `time` and those made or ended in the 30 days before, newest first.
    public func tokens(at time: Date) async throws -> [TokenRecord] {
        let monthAgo = time.addingTimeInterval(-30 * 86_400)
        return try await tokens(where: "expires_at > \(monthAgo) OR created_at > \(monthAgo)")
    }

    /// Revokes the token `id` (it can enroll nothing from now on), with its audit event in the same transaction.
    /// - Returns: the token as revoked; nil when there is no such token, or it was revoked already.
    public func revokeToken(
        id: UUID, by administrator: String, auditEvent: @Sendable (TokenRecord) -> AuditEvent
    ) async throws -> TokenRecord? {
        try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                UPDATE enrollment_tokens SET uses_left = 0, revoked_at = now(), revoked_by = \(administrator)
                WHERE id = \(id) AND revoked_at IS NULL
                RETURNING \(unescaped: Self.tokenColumns)
                """,
                logger: logger)
            var revoked: TokenRecord?
            for try await row in rows.decode(TokenRow.self) { revoked = Self.record(row) }
            if let revoked { try await AuditLog.append([auditEvent(revoked)], on: connection, logger: logger) }
            return revoked
        }
    }

    private typealias TokenRow = (UUID, String, String, Bool, String, Date, Date, Int32, String?, Date?, String?)
    private static let tokenColumns =
        "id, bound_kind, bound_to, rekey, created_by, created_at, expires_at, uses_left, comment, revoked_at, "
        + "revoked_by"

    private static func record(_ row: TokenRow) -> TokenRecord? {
        guard let binding = try? EnrollmentBinding(kind: row.1, value: row.2) else { return nil }
        return TokenRecord(
            id: row.0, binding: binding, rekey: row.3, createdBy: row.4, createdAt: row.5, expiresAt: row.6,
            usesLeft: Int(row.7), comment: row.8, revokedAt: row.9, revokedBy: row.10)
    }

    private func tokens(where condition: PostgresQuery) async throws -> [TokenRecord] {
        var query: PostgresQuery = "SELECT \(unescaped: Self.tokenColumns) FROM enrollment_tokens WHERE "
        query.sql += condition.sql + " ORDER BY created_at DESC LIMIT 1000"
        query.binds = condition.binds
        var records: [TokenRecord] = []
        for try await row in try await client.query(query, logger: logger).decode(TokenRow.self) {
            if let record = Self.record(row) { records.append(record) }
        }
        return records
    }

    /// What `token` may enroll, when it is known, not used up and not expired at `time`; nothing is used.
    public func grant(of token: EnrollmentToken, at time: Date) async throws -> TokenGrant? {
        let hash = ByteBuffer(bytes: token.hash)
        return try await client.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT bound_kind, bound_to, rekey, created_by FROM enrollment_tokens
                WHERE token_hash = \(hash) AND uses_left > 0 AND expires_at > \(time)
                """,
                logger: logger
            )
            var grant: TokenGrant?
            for try await (kind, value, rekey, creator) in rows.decode((String, String, Bool, String).self) {
                grant = try? TokenGrant(
                    binding: EnrollmentBinding(kind: kind, value: value), rekey: rekey, createdBy: creator)
            }
            return grant
        }
    }

    // MARK: Machines

    /// Uses one of `token`'s enrollments to enroll `machine`, and appends the audit event in the same
    /// transaction. A name that is enrolled or revoked already is enrolled again only with a re-key token, which
    /// replaces its key and lifts its revocation.
    /// - Parameters:
    ///   - machine: the machine, already checked against the directory and the token's binding; its `enrolledBy`
    ///     is filled in from the token.
    ///   - auditEvent: the event, given the token's creator and what enrolling did.
    /// - Throws: `EnrollmentError.invalidToken` when the token is unknown, used up, expired or revoked at `time`,
    ///   or not bound to this machine's name where it is a re-key; `.alreadyEnrolled` when the name is taken and
    ///   the token is no re-key. Nothing changes then, and the token is not used.
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
                RETURNING created_by, bound_kind, bound_to, rekey
                """,
                logger: logger
            )
            var grant: (creator: String, kind: String, value: String, rekey: Bool)?
            for try await row in used.decode((String, String, String, Bool).self) { grant = row }
            guard let grant else { throw EnrollmentError.invalidToken }
            if grant.rekey, grant.kind != "machine" || grant.value != machine.name {
                throw EnrollmentError.invalidToken
            }
            let previous = try await connection.query(
                "SELECT public_key, revoked_at IS NOT NULL FROM machines WHERE name = \(machine.name) FOR UPDATE",
                logger: logger)
            var found: (key: String, revoked: Bool)?
            for try await row in previous.decode((String, Bool).self) { found = row }
            if let found, !grant.rekey { throw EnrollmentError.alreadyEnrolled(revoked: found.revoked) }
            try await connection.query(
                """
                INSERT INTO machines (name, computer_dn, public_key, operating_system, agent_version, enrolled_at,
                    enrolled_by)
                VALUES (\(machine.name), \(machine.computerDN), \(machine.publicKey), \(machine.operatingSystem),
                    \(machine.agentVersion), \(machine.enrolledAt), \(grant.creator))
                ON CONFLICT (name) DO UPDATE SET computer_dn = excluded.computer_dn,
                    public_key = excluded.public_key, operating_system = excluded.operating_system,
                    agent_version = excluded.agent_version, enrolled_at = excluded.enrolled_at,
                    enrolled_by = excluded.enrolled_by, revoked_at = NULL, revoked_by = NULL
                """,
                logger: logger
            )
            let outcome: EnrollmentOutcome =
                found.map { .rekeyed(previousKey: $0.key, wasRevoked: $0.revoked) } ?? .enrolled
            try await AuditLog.append([auditEvent(grant.creator, outcome)], on: connection, logger: logger)
            return outcome
        }
    }

    /// The machine called `name` (lower case), revoked or not.
    public func machine(named name: String) async throws -> Machine? {
        try await client.withConnection { connection in
            try await Self.machines(named: name, after: nil, limit: 1, on: connection, logger: logger).first
        }
    }

    /// The enrolled machines by name: at most `limit`, those whose names come after `after` when it is given.
    public func machines(after: String? = nil, limit: Int = 10_000) async throws -> [Machine] {
        try await client.withConnection { connection in
            try await Self.machines(named: nil, after: after, limit: limit, on: connection, logger: logger)
        }
    }

    /// The enrollments of the machines called `names`: each one's device key now, and whether it is revoked. A name
    /// that is not enrolled is left out.
    public func enrollments(of names: [String]) async throws -> [String: Enrollment] {
        let rows = try await client.query(
            "SELECT name, public_key, revoked_at IS NOT NULL FROM machines WHERE name = ANY(\(names))",
            logger: logger)
        var enrollments: [String: Enrollment] = [:]
        for try await (name, publicKey, revoked) in rows.decode((String, String, Bool).self) {
            enrollments[name] = Enrollment(publicKey: publicKey, revoked: revoked)
        }
        return enrollments
    }

    /// Keeps `report` (JSON) as the latest doctor's report of the machine called `name`, made at `time`.
    /// - Returns: `false` when no such machine is enrolled (or it is revoked), or a report as recent or more
    ///   recent is kept already (a report is taken once).
    public func recordDoctorReport(_ report: String, madeAt time: Date, of name: String) async throws -> Bool {
        let rows = try await client.query(
            """
            UPDATE machines SET doctor_report = \(report)::jsonb, doctor_reported_at = \(time)
            WHERE name = \(name) AND revoked_at IS NULL
                AND (doctor_reported_at IS NULL OR doctor_reported_at < \(time))
            RETURNING name
            """,
            logger: logger)
        var recorded = false
        for try await _ in rows.decode(String.self) { recorded = true }
        return recorded
    }

    /// Revokes the machine called `name`: its agent can no longer connect until an administrator re-keys it.
    /// - Parameter auditEvent: appended in the same transaction, when given; a caller that must not wait for the
    ///   audit log records it another way.
    /// - Returns: `false` when no such machine is enrolled or it is already revoked; nothing is recorded then.
    public func revoke(
        _ name: String,
        by administrator: String,
        at time: Date,
        auditEvent: AuditEvent?
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
            if revoked, let auditEvent { try await AuditLog.append([auditEvent], on: connection, logger: logger) }
            return revoked
        }
    }

    /// The machine called `name`, or every machine when `name` is `nil`, by name.
    private static func machines(
        named name: String?,
        after: String?,
        limit: Int,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Machine] {
        let query: PostgresQuery = """
            SELECT name, computer_dn, public_key, operating_system, agent_version, enrolled_at, enrolled_by,
                revoked_at, revoked_by, last_seen_at, doctor_report::text, doctor_reported_at
            FROM machines
            WHERE (\(name)::text IS NULL OR name = \(name)) AND (\(after)::text IS NULL OR name > \(after))
            ORDER BY name LIMIT \(limit)
            """
        let rows = try await connection.query(query, logger: logger)
        var machines: [Machine] = []
        for try await row in rows.decode(
            (String, String, String, String, String, Date, String, Date?, String?, Date?, String?, Date?).self)
        {
            machines.append(
                Machine(
                    name: row.0, computerDN: row.1, publicKey: row.2, operatingSystem: row.3, agentVersion: row.4,
                    enrolledAt: row.5, enrolledBy: row.6, revokedAt: row.7, revokedBy: row.8, lastSeenAt: row.9,
                    doctorReport: row.10, doctorReportedAt: row.11))
        }
        return machines
    }
}
