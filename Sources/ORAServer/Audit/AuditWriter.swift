public import Logging
public import ORACore
import ORAStore
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// Writes audit events for the whole server, batching the events that arrive while a write is in progress into
/// the next transaction (group commit): a caller waits for one commit however many others are recording, so
/// auditing before acting costs little.
///
/// `record` returns only once the event is committed. When it throws, the event may not be stored and the caller
/// must not perform the action it was about to audit.
public final class AuditWriter: Service, Sendable {
    /// Batching and failure limits.
    public struct Settings: Sendable {
        /// The most events in one transaction.
        public var maximumBatch: Int
        /// How long one write attempt may take before its callers are refused.
        public var writeTimeout: Duration
        /// How often a failed write is tried, in all; retries are idempotent (event ids are kept).
        public var attempts: Int

        /// Creates settings.
        public init(maximumBatch: Int = 2_000, writeTimeout: Duration = .seconds(5), attempts: Int = 2) {
            self.maximumBatch = maximumBatch
            self.writeTimeout = writeTimeout
            self.attempts = attempts
        }
    }

    private struct State {
        /// The events waiting, and their callers in the same order; kept apart so a batch is taken without
        /// copying either.
        var queue: [AuditLog.PreparedEvent] = []
        var waiting: [CheckedContinuation<Void, any Error>] = []
        var accepting = true
        /// The chain's head after this writer's last batch; the next batch is appended after it in one statement,
        /// which notices when another server has moved it meanwhile.
        var head: AuditChainHead?
    }

    private let client: PostgresClient
    private let settings: Settings
    private let logger: Logger
    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// Creates a writer on `client`.
    public init(client: PostgresClient, settings: Settings = .init(), logger: Logger) {
        self.client = client
        self.settings = settings
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Records `event` and returns once it is committed.
    /// - Throws: `AuditUnavailableError` when it could not be committed; do not perform the audited action.
    public func record(_ event: AuditEvent) async throws(AuditUnavailableError) {
        // Encoded here, by each caller at once, so the writer holding the chain lock only hashes and sends.
        let prepared = AuditLog.PreparedEvent(event)
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let accepted = state.withLock { state in
                    guard state.accepting else { return false }
                    state.queue.append(prepared)
                    state.waiting.append(continuation)
                    return true
                }
                if accepted {
                    wake.yield()
                } else {
                    continuation.resume(throwing: AuditUnavailableError(reason: "the server is shutting down"))
                }
            }
        } catch let error as AuditUnavailableError {
            throw error
        } catch {
            throw AuditUnavailableError(reason: DatabaseErrorDescription.describe(error))
        }
    }

    /// Writes batches until graceful shutdown, then refuses what is left.
    public func run() async {
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                await drain()
            }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        let left = state.withLock { state in
            state.accepting = false
            defer { (state.queue, state.waiting) = ([], []) }
            return state.waiting
        }
        for caller in left {
            caller.resume(throwing: AuditUnavailableError(reason: "the server is shutting down"))
        }
    }

    private func drain() async {
        while true {
            let (events, callers) = state.withLock { state in
                guard state.queue.count > settings.maximumBatch else {
                    // Usually everything waiting: the arrays are taken whole.
                    defer { (state.queue, state.waiting) = ([], []) }
                    return (state.queue, state.waiting)
                }
                let count = settings.maximumBatch
                defer {
                    state.queue.removeFirst(count)
                    state.waiting.removeFirst(count)
                }
                return (Array(state.queue.prefix(count)), Array(state.waiting.prefix(count)))
            }
            if events.isEmpty { return }
            let result = await write(events)
            for caller in callers {
                switch result {
                case .success: caller.resume()
                case .failure(let error): caller.resume(throwing: error)
                }
            }
        }
    }

    private func write(_ events: [AuditLog.PreparedEvent]) async -> Result<Void, AuditUnavailableError> {
        var lastError = ""
        for attempt in 1...max(1, settings.attempts) {
            do {
                // The first attempt writes without looking for stored ids (the common case, and the fast one); a
                // retry looks, so an event whose commit was only unacknowledged is stored once.
                try await withTimeout(settings.writeTimeout) {
                    if attempt == 1, try await self.appendAfterKnownHead(events) { return }
                    self.state.withLock { $0.head = nil }
                    try await self.client.withTransaction(logger: self.logger) { connection in
                        _ = try await AuditLog.append(
                            events, on: connection, logger: self.logger, checkingForStored: attempt > 1)
                    }
                }
                return .success(())
            } catch {
                lastError = DatabaseErrorDescription.describe(error)
                logger.log(
                    level: attempt < settings.attempts ? .warning : .error,
                    "could not write audit events",
                    metadata: [
                        "audit.events": "\(events.count)", "attempt": "\(attempt)", "error": "\(lastError)",
                    ])
                if attempt < settings.attempts { try? await Task.sleep(for: .milliseconds(100)) }
            }
        }
        return .failure(AuditUnavailableError(reason: lastError))
    }
}

extension AuditWriter {
    /// Appends `events` in one statement after the head this writer knows (read first when it knows none).
    /// - Returns: `false` when another server moved the head twice in a row; the caller appends the slower way.
    fileprivate func appendAfterKnownHead(_ events: [AuditLog.PreparedEvent]) async throws -> Bool {
        for _ in 0..<2 {
            let head: AuditChainHead
            if let known = state.withLock({ $0.head }) {
                head = known
            } else {
                head = try await AuditLog(client: client, logger: logger).head()
            }
            if let next = try await AuditLog.append(events, after: head, on: client, logger: logger) {
                state.withLock { $0.head = next }
                return true
            }
            state.withLock { $0.head = nil }
        }
        return false
    }
}

/// The audit log could not record an event, so the action it was for was not performed.
public struct AuditUnavailableError: Error, Sendable, CustomStringConvertible {
    /// Why, for the server's log.
    public var reason: String

    public var description: String { "the audit log is unavailable: \(reason)" }
}

struct TimeoutError: Error, CustomStringConvertible {
    var description: String { "timed out" }
}

/// Runs `body`, cancelling it and throwing `TimeoutError` when it takes longer than `limit`.
func withTimeout<Result: Sendable>(
    _ limit: Duration,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw TimeoutError() }
        return result
    }
}
