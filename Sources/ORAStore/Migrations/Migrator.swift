public import Logging
public import PostgresNIO

/// Brings a database's schema up to date, safely when several servers start at once.
///
/// The migrator holds a session-level advisory lock for the whole run, so concurrent runs take turns: the first
/// applies what is missing, the others then find nothing to do. Each migration runs in its own transaction together
/// with its bookkeeping row, so a failed migration leaves no trace.
public struct Migrator: Sendable {
    /// The advisory lock key all ora migrators share ("ora_migr" in ASCII).
    public static let lockKey: Int64 = 0x6f72_615f_6d69_6772

    private let client: PostgresClient
    private let migrations: [Migration]
    private let logger: Logger

    /// Creates a migrator.
    /// - Parameters:
    ///   - client: the database.
    ///   - migrations: the full, ordered list; `Schema.migrations` in production.
    ///   - logger: where progress is logged.
    public init(client: PostgresClient, migrations: [Migration] = Schema.migrations, logger: Logger) {
        self.client = client
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies every migration the database does not have yet.
    /// - Returns: the versions applied by this run, in order; empty when the schema was already current.
    /// - Throws: `MigrationError`.
    @discardableResult
    public func migrate() async throws(MigrationError) -> [Int] {
        try validateSequence()
        do {
            return try await client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
                do {
                    let applied = try await applyMissing(on: connection)
                    try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                    return applied
                } catch {
                    // Closing the session would release the lock too; unlock now so the pooled connection is clean.
                    _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                    throw error
                }
            }
        } catch let error as MigrationError {
            throw error
        } catch {
            throw .databaseUnavailable(reason: DatabaseErrorDescription.describe(error))
        }
    }

    private static let createBookkeeping: PostgresQuery = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """

    private func applyMissing(on connection: PostgresConnection) async throws -> [Int] {
        // Created only when missing: a server whose role may not create tables (see Docs/Audit.md) still starts on
        // a schema that is current.
        let existing = try await connection.query(
            "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger)
        var hasBookkeeping = false
        for try await value in existing.decode(Bool.self) { hasBookkeeping = value }
        if !hasBookkeeping {
            try await connection.query(Self.createBookkeeping, logger: logger)
        }
        var recorded: [Int: (name: String, checksum: String)] = [:]
        let rows = try await connection.query(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version", logger: logger)
        for try await (version, name, checksum) in rows.decode((Int, String, String).self) {
            recorded[version] = (name, checksum)
        }

        let known = migrations.last?.version ?? 0
        if let newest = recorded.keys.max(), newest > known {
            throw MigrationError.databaseIsNewer(databaseVersion: newest, knownVersion: known)
        }
        for migration in migrations {
            if let existing = recorded[migration.version], existing.checksum != migration.checksum {
                throw MigrationError.checksumMismatch(version: migration.version, name: migration.name)
            }
        }

        var applied: [Int] = []
        for migration in migrations where recorded[migration.version] == nil {
            logger.info(
                "applying database migration",
                metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"]
            )
            do {
                try await connection.withTransaction(logger: logger) { transaction in
                    for statement in migration.statements {
                        try await transaction.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await transaction.query(
                        """
                        INSERT INTO schema_migrations (version, name, checksum)
                        VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                        """,
                        logger: logger
                    )
                }
            } catch {
                throw MigrationError.statementFailed(
                    version: migration.version,
                    name: migration.name,
                    reason: DatabaseErrorDescription.describe(error)
                )
            }
            applied.append(migration.version)
        }
        return applied
    }

    private func validateSequence() throws(MigrationError) {
        for (index, migration) in migrations.enumerated() where migration.version != index + 1 {
            throw .invalidSequence("expected version \(index + 1) at position \(index + 1), found \(migration.version)")
        }
    }
}
