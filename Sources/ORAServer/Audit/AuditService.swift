import Crypto
public import Foundation
public import Logging
public import ORACore
public import ORAStore
public import ServiceLifecycle

/// The audit log for the API (search, timelines, export, verification, checkpoints) and its upkeep while the
/// server runs: the month partitions are created ahead, and the chain head is signed at every checkpoint interval
/// when it moved.
public final class AuditService: Service, Sendable {
    private let log: AuditLog
    private let settings: AuditSettings
    private let instance: String
    private let logger: Logger

    /// Creates the service.
    /// - Parameter instance: this server's name in events it records itself.
    public init(log: AuditLog, settings: AuditSettings, instance: String, logger: Logger) {
        self.log = log
        self.settings = settings
        self.instance = instance
        self.logger = logger
    }

    /// The base64 public keys whose checkpoints `verify` trusts: this server's own.
    var trustedKeys: Set<String> {
        settings.signingKey.map { [$0.publicKey.rawRepresentation.base64EncodedString()] } ?? []
    }

    /// A page of events matching `filter`, newest first.
    public func search(
        _ filter: AuditLog.Filter, before: Int64?, limit: Int
    ) async throws(AuditServiceError) -> AuditLog.Page {
        do {
            return try await log.search(filter, before: before, limit: limit)
        } catch {
            throw unavailable(error)
        }
    }

    /// Every event of one remote assistance session, in order.
    public func timeline(ofSession id: UUID) async throws(AuditServiceError) -> [ChainedAuditEvent] {
        do {
            return try await log.timeline(ofSession: id)
        } catch {
            throw unavailable(error)
        }
    }

    /// Re-verifies the chain, or the events `from`…`through`.
    public func verify(from: Int64?, through: Int64?) async throws(AuditServiceError) -> AuditLog.VerificationReport {
        do {
            return try await log.verify(from: from, through: through, trustedKeys: trustedKeys)
        } catch {
            throw unavailable(error)
        }
    }

    /// What the charts of the security team show from `since` until `until`, days in `timeZone`.
    public func statistics(
        since: Date, until: Date, timeZone: TimeZone
    ) async throws(AuditServiceError) -> AuditLog.Statistics {
        do {
            return try await log.statistics(since: since, until: until, timeZone: timeZone.identifier)
        } catch {
            throw unavailable(error)
        }
    }

    /// The events matching `filter`, oldest first, read page by page as they are consumed.
    public func export(_ filter: AuditLog.Filter) -> AuditLog.Events {
        log.export(filter)
    }

    /// Signs and stores a checkpoint of the chain head now.
    /// - Throws: `AuditServiceError.noSigningKey` when no signing key is configured, `.databaseUnavailable`.
    public func checkpoint(by actor: AuditActor, source: String?) async throws(AuditServiceError) -> AuditCheckpoint {
        guard let key = settings.signingKey else {
            throw .noSigningKey
        }
        do {
            return try await log.checkpoint(signingWith: key, actor: actor, source: source)
        } catch {
            throw unavailable(error)
        }
    }

    /// Every checkpoint, oldest first.
    public func checkpoints() async throws(AuditServiceError) -> [AuditCheckpoint] {
        do {
            return try await log.checkpoints()
        } catch {
            throw unavailable(error)
        }
    }

    /// Prepares partitions and makes checkpoints until shutdown.
    public func run() async throws {
        if settings.signingKey == nil {
            logger.warning(
                "no audit signing key is configured (audit.signing_key_file): checkpoints of the audit chain are not made"
            )
        }
        await upkeep()
    }

    /// Prepares partitions now and then every hour (or checkpoint interval, if shorter), and signs a checkpoint
    /// every checkpoint interval, until shutdown.
    private func upkeep() async {
        var lastCheckpoint = ContinuousClock.now
        await preparePartitions()
        for await _ in Ticks.every(min(.seconds(3600), settings.checkpointInterval)) {
            await preparePartitions()
            if let key = settings.signingKey, ContinuousClock.now - lastCheckpoint >= settings.checkpointInterval {
                lastCheckpoint = .now
                await checkpointIfMoved(key)
            }
        }
    }

    private func preparePartitions() async {
        do {
            try await log.preparePartitions()
        } catch {
            logger.warning(
                "could not prepare the audit log's partitions; events go to the default partition meanwhile",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    private func checkpointIfMoved(_ key: Curve25519.Signing.PrivateKey) async {
        do {
            let head = try await log.head()
            let newest = try await log.checkpoints().last
            // The checkpoint event itself moves the head by one; nothing else happened since then.
            if let newest, head.sequence <= newest.sequence + 1 { return }
            let checkpoint = try await log.checkpoint(signingWith: key, actor: .system(instance))
            logger.info(
                "audit checkpoint signed",
                metadata: ["audit.sequence": "\(checkpoint.sequence)", "audit.hash": "\(checkpoint.hash)"])
        } catch {
            logger.warning(
                "could not make an audit checkpoint", metadata: ["error": "\(DatabaseErrorDescription.describe(error))"]
            )
        }
    }

    private func unavailable(_ error: any Error) -> AuditServiceError {
        logDatabaseFailure(error, doing: "reading the audit log", logger: logger)
        return .databaseUnavailable
    }
}
