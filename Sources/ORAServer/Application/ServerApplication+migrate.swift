public import Foundation
public import Logging
import ORACore
public import ORAStore

extension ServerApplication {
    /// Connects to the database, applies missing migrations, and disconnects.
    /// - Returns: the versions applied.
    public static func migrate(configuration: ServerConfiguration, logger: Logger) async throws -> [Int] {
        let endpoint = try configuration.database.endpoint()
        return try await endpoint.withClient(logger: logger) { client in
            try await DatabaseSetup.prepare(client: client, probe: endpoint.makeProbe(logger: logger), logger: logger)
        }
    }

    /// Detaches the audit log's month partitions that end by `date` (the retention operation; see Docs/Audit.md).
    /// Runs with the configured database role, which must own the audit log.
    public static func detachAuditPartitions(
        endingBy date: Date,
        configuration: ServerConfiguration,
        logger: Logger
    ) async throws -> [AuditLog.DetachedPartition] {
        let endpoint = try configuration.database.endpoint()
        let actor = AuditActor(kind: .system, id: "\(instanceName) (database role \(configuration.database.user))")
        return try await endpoint.withClient(logger: logger) { client in
            try await endpoint.makeProbe(logger: logger).ping()
            return try await AuditLog(client: client, logger: logger).detachPartitions(endingBy: date, actor: actor)
        }
    }
}
