public import Foundation
public import Logging
public import ORACore
public import ORAStore
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// Holds the active policy version of this server and switches to a new one as soon as any server activates it:
/// it listens on the `ora_policy` channel and reloads on every notification (and after reconnecting, in case one
/// was missed).
public final class PolicyService: Service, Sendable {
    /// The policy this server decides with.
    public struct Active: Sendable {
        /// The activation, or `nil` when no policy was ever applied (then everything is denied).
        public var activation: PolicyStore.Activation?
        /// The parsed set.
        public var set: PolicySet
    }

    private let store: PolicyStore
    private let client: PostgresClient
    private let logger: Logger
    private let state = Mutex(Active(activation: nil, set: PolicySet(policies: [])))

    /// Creates the service.
    public init(store: PolicyStore, client: PostgresClient, logger: Logger) {
        self.store = store
        self.client = client
        self.logger = logger
    }

    /// The active policy.
    public var active: Active { state.withLock { $0 } }

    /// Reads the active version from the database and switches to it.
    public func reload() async throws {
        guard let (activation, files) = try await store.active() else {
            state.withLock { $0 = Active(activation: nil, set: PolicySet(policies: [])) }
            return
        }
        if state.withLock({ $0.activation == activation }) { return }
        let set: PolicySet
        do {
            set = try PolicyParser.parse(files)
        } catch {
            // Stored sets were validated when applied; a set this server cannot read (from a newer ora) is not used.
            logger.error(
                "the active policy version cannot be read by this server; keeping the previous one",
                metadata: ["policy.version": "\(activation.version)", "error": "\(error.description)"])
            return
        }
        state.withLock { $0 = Active(activation: activation, set: set) }
        logger.notice(
            "policy version active",
            metadata: [
                "policy.version": "\(activation.version)", "policy.hash": "\(activation.contentHash)",
                "policy.count": "\(set.policies.count)",
            ])
    }

    /// Listens for activations until shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.client.withConnection { connection in
                        try await connection.listen(on: PolicyStore.channel) { notifications in
                            // Anything activated while this server was not listening.
                            try await self.reload()
                            for try await _ in notifications {
                                try await self.reload()
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    self.logger.warning(
                        "listening for policy changes failed; retrying",
                        metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }
}
