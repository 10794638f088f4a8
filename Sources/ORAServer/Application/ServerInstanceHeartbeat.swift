import Foundation
import Logging
import ORAStore
import ServiceLifecycle
import Synchronization

/// Keeps this replica's row in `server_instances` fresh while it runs and removes it on a graceful shutdown.
final class ServerInstanceHeartbeat: Service, Sendable {
    let id: UUID
    private let registry: ServerInstanceRegistry
    private let version: String
    private let logger: Logger
    private let startedAt = Date()
    private let interval: Duration
    /// Where the other replicas reach this one's relay port, and the SHA-256 of its TLS key: asked at every beat.
    private let relay = Mutex<@Sendable () -> (address: String?, keySHA256: String?)>({ (nil, nil) })

    init(id: UUID, registry: ServerInstanceRegistry, version: String, logger: Logger, interval: Duration = .seconds(15))
    {
        self.id = id
        self.registry = registry
        self.version = version
        self.logger = logger
        self.interval = interval
    }

    /// Has every beat say, as `address` answers then, where the other replicas reach this one's relay port.
    func announceRelay(_ address: @escaping @Sendable () -> (address: String?, keySHA256: String?)) {
        relay.withLock { $0 = address }
    }

    func run() async throws {
        for await _ in Ticks.every(interval) {
            await beat()
        }
        do {
            try await registry.remove(id: id)
        } catch {
            logger.warning(
                "could not remove this server from server_instances",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    /// Records that this replica is alive; a failure is logged, readiness reports the database itself.
    func beat() async {
        let (relayAddress, relayKey) = relay.withLock { $0 }()
        do {
            try await registry.heartbeat(
                id: id,
                host: ProcessInfo.processInfo.hostName,
                processID: Int(ProcessInfo.processInfo.processIdentifier),
                version: version,
                startedAt: startedAt,
                relayAddress: relayAddress,
                relayKey: relayKey
            )
        } catch {
            logger.warning(
                "server heartbeat failed",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }
}
