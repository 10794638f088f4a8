public import Logging

/// What a server does with the database before it serves: check it can be reached, bring the schema up to date, and
/// say whether the audit log's protection holds for the role it runs with.
public enum DatabaseSetup {
    /// Checks the database with a direct connection, which fails fast with the real reason (the pool would retry
    /// for a minute first), then brings the schema up to date.
    /// - Returns: the versions applied.
    @discardableResult
    public static func prepare(client: DatabaseClient, probe: DatabaseProbe, logger: Logger) async throws -> [Int] {
        try await probe.ping()
        let applied = try await Migrator(client: client, logger: logger).migrate()
        logger.info("database schema is current", metadata: ["migrations.applied": "\(applied.count)"])
        await warnIfAuditLogIsUnprotected(client: client, logger: logger)
        return applied
    }

    /// The audit log's triggers stop everyone, but a role that owns the table (or a superuser) can switch them off.
    /// A server running with such a role works, and says so at every start.
    static func warnIfAuditLogIsUnprotected(client: DatabaseClient, logger: Logger) async {
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
}
