public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// Policy versions in PostgreSQL: every applied set is kept with its files, and the newest activation says which
/// version is active. Applying and rolling back are single transactions, serialised between all servers, and
/// announced on the `ora_policy` channel so every server switches at once.
public struct PolicyStore: Sendable {
    /// The LISTEN/NOTIFY channel on which activations are announced (the payload is the version number).
    public static let channel = "ora_policy"
    /// The advisory lock key that serialises applies and rollbacks ("ora_poli" in ASCII).
    static let lockKey: Int64 = 0x6f72_615f_706f_6c69

    /// One entry of the activation history.
    public struct Activation: Sendable, Equatable, Codable {
        /// The version that became active.
        public var version: Int64
        /// `apply` or `rollback`.
        public var action: String
        /// Who did it.
        public var actorDN: String
        /// Why.
        public var comment: String?
        /// When.
        public var activatedAt: Date
        /// The version's content hash.
        public var contentHash: String

        enum CodingKeys: String, CodingKey {
            case version, action, comment
            case actorDN = "actor_dn"
            case activatedAt = "activated_at"
            case contentHash = "content_hash"
        }
    }

    /// The result of an apply.
    public enum ApplyOutcome: Sendable, Equatable {
        /// A new version was stored and activated.
        case applied(Int64)
        /// The active version already has exactly these files; nothing changed.
        case unchanged(Int64)
    }

    /// Which active version an apply was reviewed against.
    public enum Base: Sendable, Equatable {
        /// No version was active.
        case nothing
        /// This version was active.
        case version(Int64)
        /// Whatever is active: for automation that does not review changes.
        case anything

        var expected: Int64? {
            if case .version(let version) = self { return version }
            return nil
        }
    }

    /// Why an apply or rollback was refused.
    public enum ConflictError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Someone else activated another version since the caller looked.
        case activeVersionChanged(expected: Int64?, actual: Int64?)
        /// There is no such version.
        case unknownVersion(Int64)

        public var description: String {
            switch self {
            case .activeVersionChanged(let expected, let actual):
                return "the active policy version is \(actual.map(String.init) ?? "none"), not "
                    + "\(expected.map(String.init) ?? "none"); someone applied a change meanwhile: review it and try again"
            case .unknownVersion(let version):
                return "there is no policy version \(version)"
            }
        }
    }

    private let client: PostgresClient
    private let logger: Logger

    /// Creates a store on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Listens for activations on a connection of its own and runs `body` with them: a notification for each version
    /// that any server activates after `body` starts (the payload is its number). The sequence throws when the
    /// connection breaks.
    public func withActivations<Result: Sendable>(
        _ body: @Sendable (DatabaseNotifications) async throws -> Result
    ) async throws -> Result {
        try await client.listen(to: [Self.channel], body)
    }

    /// Stores `set` as a new version and activates it, unless the active version is no longer `base`.
    /// - Parameters:
    ///   - set: a validated set.
    ///   - author: the administrator's DN.
    ///   - comment: why.
    ///   - base: the active version the administrator reviewed the change against; when another version is active
    ///     by now, the apply is a conflict.
    ///   - auditEvent: the `policy.applied` event for the new version and the one it replaces, appended to the
    ///     audit log in the same transaction: the change and its record are stored together or not at all.
    public func apply(
        _ set: PolicySet,
        author: String,
        comment: String?,
        base: Base,
        auditEvent: @Sendable (_ version: Int64, _ previous: Int64?) -> AuditEvent
    ) async throws -> ApplyOutcome {
        let files = String(decoding: try JSONEncoder().encode(set.files), as: UTF8.self)
        let hash = set.contentHash
        return try await client.withTransaction(logger: logger, passingThrough: ConflictError.self) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
            let active = try await Self.activations(limit: 1, on: connection, logger: logger).first
            if base != .anything, active?.version != base.expected {
                throw ConflictError.activeVersionChanged(expected: base.expected, actual: active?.version)
            }
            if let active, active.contentHash == hash {
                return .unchanged(active.version)
            }
            let rows = try await connection.query(
                """
                INSERT INTO policy_versions (content_hash, files, author_dn, comment)
                VALUES (\(hash), \(files)::jsonb, \(author), \(comment))
                RETURNING version
                """,
                logger: logger
            )
            var version: Int64 = 0
            for try await value in rows.decode(Int64.self) { version = value }
            try await Self.activate(
                version, action: "apply", actor: author, comment: comment, on: connection, logger: logger)
            try await AuditLog.append([auditEvent(version, active?.version)], on: connection, logger: logger)
            return .applied(version)
        }
    }

    /// Activates an earlier version again.
    /// - Parameter auditEvent: the `policy.rolled_back` event for the version's content hash and the version it
    ///   replaces, appended to the audit log in the same transaction.
    public func rollback(
        to version: Int64,
        actor: String,
        comment: String?,
        auditEvent: @Sendable (_ contentHash: String, _ previous: Int64?) -> AuditEvent
    ) async throws -> RollbackOutcome {
        try await client.withTransaction(logger: logger, passingThrough: ConflictError.self) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
            let rows = try await connection.query(
                "SELECT content_hash FROM policy_versions WHERE version = \(version)", logger: logger)
            var hash: String?
            for try await value in rows.decode(String.self) { hash = value }
            guard let hash else { throw ConflictError.unknownVersion(version) }
            let active = try await Self.activations(limit: 1, on: connection, logger: logger).first
            // Rolling back to the version that is active changes nothing, and records nothing.
            if active?.version == version { return .alreadyActive }
            try await Self.activate(
                version, action: "rollback", actor: actor, comment: comment, on: connection, logger: logger)
            try await AuditLog.append([auditEvent(hash, active?.version)], on: connection, logger: logger)
            return .rolledBack
        }
    }

    /// What a rollback did.
    public enum RollbackOutcome: Sendable, Hashable {
        /// The version is active again.
        case rolledBack
        /// It was the active version already; nothing changed.
        case alreadyActive
    }

    /// The active version with its files, or `nil` when no policy was ever applied.
    public func active() async throws -> (activation: Activation, files: [PolicySet.File])? {
        try await client.withConnection { connection in
            guard let activation = try await Self.activations(limit: 1, on: connection, logger: logger).first else {
                return nil
            }
            // A version's files never change, so reading them after the activation is consistent.
            let rows = try await connection.query(
                "SELECT files::text FROM policy_versions WHERE version = \(activation.version)", logger: logger)
            for try await files in rows.decode(String.self) {
                return (activation, try JSONDecoder().decode([PolicySet.File].self, from: Data(files.utf8)))
            }
            return nil
        }
    }

    /// The files of stored version `version`, or `nil` when no version has that number.
    public func files(ofVersion version: Int64) async throws -> [PolicySet.File]? {
        let rows = try await client.query(
            "SELECT files::text FROM policy_versions WHERE version = \(version)", logger: logger)
        for try await files in rows.decode(String.self) {
            return try JSONDecoder().decode([PolicySet.File].self, from: Data(files.utf8))
        }
        return nil
    }

    /// Every activation, newest first.
    public func history(limit: Int = 100) async throws -> [Activation] {
        try await client.withConnection { connection in
            try await Self.activations(limit: limit, on: connection, logger: logger)
        }
    }

    /// The newest `limit` activations; the first is the active version.
    private static func activations(
        limit: Int,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Activation] {
        let rows = try await connection.query(
            """
            SELECT a.version, a.action, a.actor_dn, a.comment, a.activated_at, v.content_hash
            FROM policy_activations a JOIN policy_versions v USING (version)
            ORDER BY a.id DESC LIMIT \(limit)
            """,
            logger: logger
        )
        var result: [Activation] = []
        for try await (version, action, actor, comment, activatedAt, hash) in rows.decode(
            (Int64, String, String, String?, Date, String).self)
        {
            result.append(
                Activation(
                    version: version, action: action, actorDN: actor, comment: comment, activatedAt: activatedAt,
                    contentHash: hash))
        }
        return result
    }

    /// Records that `version` is active from now and tells every server (delivered when the transaction commits).
    private static func activate(
        _ version: Int64,
        action: String,
        actor: String,
        comment: String?,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO policy_activations (version, action, actor_dn, comment)
            VALUES (\(version), \(action), \(actor), \(comment))
            """,
            logger: logger
        )
        try await connection.query("SELECT pg_notify(\(channel), \(String(version)))", logger: logger)
    }
}
