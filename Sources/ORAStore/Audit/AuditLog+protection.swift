import PostgresNIO

extension AuditLog {
    /// Whether the role this log connects as could switch off the audit log's append-only protection: it owns the
    /// table (or is a member of its owner) or is a superuser. The triggers stop everyone else.
    public func connectedRoleCanUnprotect() async throws -> Bool {
        let rows = try await client.query(
            """
            SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR r.rolsuper
            FROM pg_class c, pg_roles r WHERE c.oid = 'audit_events'::regclass AND r.rolname = current_user
            """,
            logger: logger)
        var owns = false
        for try await value in rows.decode(Bool.self) { owns = owns || value }
        return owns
    }
}
