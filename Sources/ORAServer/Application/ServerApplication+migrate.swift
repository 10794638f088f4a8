public import Foundation
public import Logging
import ORACore
public import ORAStore
import PostgresNIO

extension ServerApplication {
    /// Connects to the database, applies missing migrations, and disconnects.
    /// - Returns: the versions applied.
    public static func migrate(configuration: ServerConfiguration, logger: Logger) async throws -> [Int] {
        let client = PostgresClient(
            configuration: try configuration.database.clientConfiguration(), backgroundLogger: logger)
        let probe = DatabaseProbe(configuration: try configuration.database.probeConfiguration(), logger: logger)
        return try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await prepareDatabase(client: client, probe: probe, logger: logger)
        }
    }

    /// Detaches the audit log's month partitions that end by `date` (the retention operation; see Docs/Audit.md).
    /// Runs with the configured database role, which must own the audit log.
    public static func detachAuditPartitions(
        endingBy date: Date,
        configuration: ServerConfiguration,
        logger: Logger
    ) async throws -> [AuditLog.DetachedPartition] {
        let client = PostgresClient(
            configuration: try configuration.database.clientConfiguration(), backgroundLogger: logger)
        let probe = DatabaseProbe(configuration: try configuration.database.probeConfiguration(), logger: logger)
        return try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await probe.ping()
            let user = configuration.database.user
            return try await AuditLog(client: client, logger: logger).detachPartitions(
                endingBy: date, actor: AuditActor(kind: .system, id: "\(instanceName) (database role \(user))"))
        }
    }

    /// The audit log's triggers stop everyone, but a role that owns the table (or a superuser) can switch them off.
    /// A server running with such a role works, and says so at every start.
    static func warnIfAuditLogIsUnprotected(client: PostgresClient, logger: Logger) async {
        do {
            if try await AuditLog(client: client, logger: logger).connectedRoleCanUnprotect() {
                logger.warning(
                    """
                    the server's database role owns the audit log (or is a superuser), so it could switch off the \
                    append-only protection; run the server with a role that only has the ora_server role's rights \
                    (Docs/Audit.md, "Database roles")
                    """)
            }
        } catch {
            logger.warning(
                "could not check the audit log's protection",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    /// Checks the database with a direct connection, which fails fast with the real reason (the pool would retry
    /// for a minute first), then brings the schema up to date.
    /// - Returns: the versions applied.
    @discardableResult
    static func prepareDatabase(client: PostgresClient, probe: DatabaseProbe, logger: Logger) async throws -> [Int] {
        try await probe.ping()
        let applied = try await Migrator(client: client, logger: logger).migrate()
        logger.info("database schema is current", metadata: ["migrations.applied": "\(applied.count)"])
        await warnIfAuditLogIsUnprotected(client: client, logger: logger)
        return applied
    }
}
