public import Logging
import NIOCore
import NIOPosix
public import ORACore
public import ORAStore
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
        /// The most batches on their way to the database at once, each on its own connection: while the first
        /// commits, the ones chained after it are already inserting.
        public var depth: Int

        /// Creates settings.
        public init(
            maximumBatch: Int = 2_000, writeTimeout: Duration = .seconds(5), attempts: Int = 2, depth: Int = 2
        ) {
            self.maximumBatch = maximumBatch
            self.writeTimeout = writeTimeout
            self.attempts = attempts
            self.depth = max(1, depth)
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

    /// The writer's own connections, on `thread`, where the writer's tasks run too: a reply is handled, and the
    /// next batch sent, on the thread that read it, without waiting for a turn in the pool the callers share.
    private let database: AuditWriterConnections
    private let thread: MultiThreadedEventLoopGroup
    private let settings: Settings
    private let logger: Logger
    private let state = Mutex(State())
    private let metrics: ServerMetrics?
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// Creates a writer with connections of its own to `endpoint`'s database (as many as batches
    /// may be on their way, and one more), opened when it runs; `metrics`, when given, times each commit and counts
    /// the refusals.
    public init(
        endpoint: DatabaseEndpoint, settings: Settings = .init(), metrics: ServerMetrics? = nil, logger: Logger
    ) {
        thread = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        database = AuditWriterConnections(
            endpoint: endpoint, connections: settings.depth + 1, statementTimeout: settings.writeTimeout,
            eventLoopGroup: thread, logger: logger)
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Records `event` and returns once it is committed.
    /// - Throws: `AuditUnavailableError` when it could not be committed; do not perform the audited action.
    public func record(_ event: AuditEvent) async throws(AuditUnavailableError) {
        // Encoded here, by each caller at once, so the writer holding the chain lock only hashes and sends.
        let prepared = AuditLog.PreparedEvent(event)
        // An event the database would refuse is refused here, alone, before it can fail a batch of others.
        if let oversized = prepared.oversizedColumn {
            logger.error(
                "refusing an audit event the database cannot store",
                metadata: ["audit.event": "\(event.name)", "reason": "\(oversized)"])
            metrics?.auditRefused()
            throw AuditUnavailableError(reason: "the event cannot be stored: \(oversized)", refusedData: true)
        }
        let handed = ContinuousClock.now
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
            metrics?.auditCommitted(after: ContinuousClock.now - handed)
        } catch let error as AuditUnavailableError {
            metrics?.auditRefused()
            throw error
        } catch {
            metrics?.auditRefused()
            throw AuditUnavailableError(reason: DatabaseErrorDescription.describe(error))
        }
    }

    /// Counts an action refused because its record could not be committed in the action's own transaction (a login
    /// with its session), which does not pass through this writer.
    public func countRefusal() {
        metrics?.auditRefused()
    }

    /// How many events wait for their batch now.
    public var queued: Int {
        state.withLock { $0.queue.count }
    }

    /// Writes batches until graceful shutdown, then writes what it had accepted and refuses the rest.
    public func run() async {
        // The connections run apart from the service group's graceful shutdown, which would close them at once:
        // they stay open until everything accepted is written.
        let connections = Task.detached { await self.database.run() }
        let executor = WriterExecutor(loop: thread.next())
        await withTaskExecutorPreference(executor) {
            await writeUntilShutdown(on: executor)
        }
        connections.cancel()
        await connections.value
        // From a task of its own: this one may still be running on that thread.
        try? await Task.detached { try await self.thread.shutdownGracefully() }.value
    }

    private func writeUntilShutdown(on executor: WriterExecutor) async {
        var pipeline: [InFlight] = []
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                await advance(&pipeline, on: executor)
            }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        // Shutting down: nothing more is taken, and what was taken is written before the writer stops.
        state.withLock { $0.accepting = false }
        while let first = pipeline.first {
            pipeline = await settle(first, before: pipeline.dropFirst())
        }
        while true {
            let (events, callers) = takeBatch()
            if events.isEmpty { break }
            _ = await writeIsolating(events, callers)
        }
    }

    /// A batch on its way to the database, chained (in memory) after the one ahead of it.
    private final class InFlight: Sendable {
        let events: [AuditLog.PreparedEvent]
        let callers: [CheckedContinuation<Void, any Error>]
        let task: Task<Bool, any Error>
        private let ended = EndFlag()

        init(
            _ batch: AuditLog.ChainedBatch, events: [AuditLog.PreparedEvent],
            callers: [CheckedContinuation<Void, any Error>], writer: AuditWriter,
            executor: WriterExecutor
        ) {
            self.events = events
            self.callers = callers
            let ended = self.ended
            let (database, limit, wake) = (writer.database, writer.settings.writeTimeout, writer.wake)
            task = Task(executorPreference: executor) {
                defer {
                    ended.set()
                    wake.yield()
                }
                return try await withTimeout(limit) {
                    try await database.appendBehind(batch, lockWait: limit)
                }
            }
        }

        var hasEnded: Bool { ended.isSet }
    }

    /// Set once, when a batch's task has ended.
    private final class EndFlag: Sendable {
        private let value = Atomic(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// Answers the batches that have ended and starts the next ones: a batch when none is on its way; another
    /// behind the last (at most `Settings.depth` on their way) once as many events wait as that one carries, and at
    /// least 64, so each connection gets as much work as the one ahead and the two insert side by side (a smaller
    /// batch behind a large one is done long before the lock it waits for, and leaves a connection idle); with the
    /// pipeline full, it waits for the first. Returns when nothing more can be done until the next wake-up.
    private func advance(_ pipeline: inout [InFlight], on executor: WriterExecutor) async {
        while true {
            if let first = pipeline.first, first.hasEnded || pipeline.count >= settings.depth {
                pipeline = await settle(first, before: pipeline.dropFirst())
                continue
            }
            let waiting = state.withLock { $0.queue.count }
            if waiting == 0 { return }
            if let last = pipeline.last {
                // The head the last one leaves, known since it was launched.
                guard waiting >= max(64, last.events.count), let head = state.withLock({ $0.head }) else { return }
                let (events, callers) = takeBatch()
                pipeline.append(launch(events, callers, after: head, on: executor))
                continue
            }
            let (events, callers) = takeBatch()
            guard let head = await storedHead() else {
                // The head cannot be read: the careful way decides.
                _ = await writeIsolating(events, callers)
                continue
            }
            pipeline.append(launch(events, callers, after: head, on: executor))
        }
    }

    private func launch(
        _ events: [AuditLog.PreparedEvent], _ callers: [CheckedContinuation<Void, any Error>],
        after head: AuditChainHead, on executor: WriterExecutor
    ) -> InFlight {
        let batch = AuditLog.ChainedBatch(events, after: head)
        state.withLock { $0.head = batch.next }
        return InFlight(batch, events: events, callers: callers, writer: self, executor: executor)
    }

    /// The events waiting (at most a batch) and their callers.
    private func takeBatch() -> ([AuditLog.PreparedEvent], [CheckedContinuation<Void, any Error>]) {
        state.withLock { state in
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
    }

    /// The head this writer left, or the stored one when it does not know.
    private func currentHead() async throws -> AuditChainHead {
        if let known = state.withLock({ $0.head }) { return known }
        return try await database.head()
    }

    /// `currentHead()`, or `nil` when it cannot be read in time. The head this writer left is known at once, with
    /// no timer to set.
    private func storedHead() async -> AuditChainHead? {
        if let known = state.withLock({ $0.head }) { return known }
        return try? await withTimeout(settings.writeTimeout) { try await self.database.head() }
    }

    /// The most callers of a batch answered on the writer's own thread rather than from the shared pool.
    private static let answeredHere = 16

    /// Waits for `batch` and answers its callers. When it failed, the batches `following` it (each chained after
    /// the one before) cannot have followed it unless it was stored after all: they are awaited, and each one that
    /// did not succeed is written again the careful way, in order; once the database refuses a batch again, the
    /// ones after it are refused with it rather than waiting as long once more.
    /// - Returns: `following` while they are still on their way, none when they were answered here.
    private func settle(_ batch: InFlight, before following: ArraySlice<InFlight>) async -> [InFlight] {
        let outcome = await batch.task.result
        if case .success(true) = outcome {
            let callers = batch.callers
            if callers.count <= Self.answeredHere {
                // A few callers: answered at once, each resumed on its own executor.
                resume(callers, with: .success(()))
            } else {
                // Answered from the shared pool: resuming hundreds of callers here would hold up the next batch.
                Task(executorPreference: globalConcurrentExecutor) { self.resume(callers, with: .success(())) }
            }
            return Array(following)
        }
        state.withLock { $0.head = nil }
        var outcomes: [Result<Bool, any Error>] = []
        for next in following { outcomes.append(await next.task.result) }
        var written = await writeIsolating(batch.events, batch.callers, after: Self.failure(of: outcome))
        for (next, followed) in zip(following, outcomes) {
            if case .success(true) = followed {
                resume(next.callers, with: .success(()))
            } else if case .failure = written {
                resume(next.callers, with: written)
            } else {
                written = await writeIsolating(next.events, next.callers, after: Self.failure(of: followed))
            }
        }
        return []
    }

    /// Writes `events` the careful way and answers their `callers`. When the database refuses the data itself
    /// (not a lost connection or a timeout), the batch is split and the halves written apart, in order, until the
    /// event it refuses is alone: that caller is refused, every other event is stored.
    /// - Parameter failure: why a first (pipelined) attempt failed, if it did.
    /// - Returns: a failure only when the database was unavailable, so the batches behind are refused with it.
    private func writeIsolating(
        _ events: [AuditLog.PreparedEvent], _ callers: [CheckedContinuation<Void, any Error>],
        after failure: (any Error)? = nil
    ) async -> Result<Void, AuditUnavailableError> {
        if let failure, AuditLog.isRefusedData(failure), events.count > 1 {
            return await writeHalves(events, callers)
        }
        let written = await write(events, after: failure)
        switch written {
        case .success:
            resume(callers, with: written)
            return written
        case .failure(let error) where error.refusedData:
            if events.count > 1 { return await writeHalves(events, callers) }
            logger.error(
                "the database refused an audit event; it alone is refused",
                metadata: ["audit.event": "\(events[0].chain.event.name)", "error": "\(error.reason)"])
            resume(callers, with: written)
            return .success(())
        case .failure:
            resume(callers, with: written)
            return written
        }
    }

    private func writeHalves(
        _ events: [AuditLog.PreparedEvent], _ callers: [CheckedContinuation<Void, any Error>]
    ) async -> Result<Void, AuditUnavailableError> {
        let middle = events.count / 2
        let first = await writeIsolating(Array(events[..<middle]), Array(callers[..<middle]))
        if case .failure = first {
            resume(Array(callers[middle...]), with: first)
            return first
        }
        return await writeIsolating(Array(events[middle...]), Array(callers[middle...]))
    }

    /// The error of a pipelined attempt that threw; `nil` for one that found the head moved (not a failure: the
    /// careful way starts from its first attempt).
    private static func failure(of outcome: Result<Bool, any Error>) -> (any Error)? {
        if case .failure(let error) = outcome { return error }
        return nil
    }

    private func resume(
        _ callers: [CheckedContinuation<Void, any Error>], with result: Result<Void, AuditUnavailableError>
    ) {
        for caller in callers {
            switch result {
            case .success: caller.resume()
            case .failure(let error): caller.resume(throwing: error)
            }
        }
    }

    /// Writes `events` the careful way: the chain lock, the head read, and retries that look for events stored
    /// already.
    /// - Parameter failure: why a first (pipelined) attempt failed; the attempts go on from the second.
    private func write(
        _ events: [AuditLog.PreparedEvent], after failure: (any Error)? = nil
    ) async -> Result<Void, AuditUnavailableError> {
        var lastError = failure.map(DatabaseErrorDescription.describe) ?? ""
        let first = failure == nil ? 1 : 2
        if failure != nil {
            logger.log(
                level: first <= settings.attempts ? .warning : .error, "could not write audit events",
                metadata: ["audit.events": "\(events.count)", "attempt": "1", "error": "\(lastError)"])
        }
        guard first <= settings.attempts else {
            return .failure(
                AuditUnavailableError(reason: lastError, refusedData: failure.map(AuditLog.isRefusedData) ?? false))
        }
        for attempt in first...settings.attempts {
            do {
                // The first attempt writes without looking for stored ids (the common case, and the fast one); a
                // retry looks, so an event whose commit was only unacknowledged is stored once.
                try await withTimeout(settings.writeTimeout) {
                    if attempt == 1, try await self.appendAfterKnownHead(events) { return }
                    self.state.withLock { $0.head = nil }
                    try await self.database.append(
                        events, checkingForStored: attempt > 1, lockWait: self.settings.writeTimeout)
                }
                return .success(())
            } catch {
                lastError = DatabaseErrorDescription.describe(error)
                // The same events would be refused again: the caller splits the batch instead.
                if AuditLog.isRefusedData(error) {
                    return .failure(AuditUnavailableError(reason: lastError, refusedData: true))
                }
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
            let batch = AuditLog.ChainedBatch(events, after: try await currentHead())
            if try await database.appendBehind(batch, lockWait: settings.writeTimeout) {
                state.withLock { $0.head = batch.next }
                return true
            }
            state.withLock { $0.head = nil }
        }
        return false
    }
}

/// Runs the writer's tasks on the event loop of its database connections.
private final class WriterExecutor: TaskExecutor {
    private let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// The audit log could not record an event, so the action it was for was not performed.
public struct AuditUnavailableError: Error, Sendable, CustomStringConvertible {
    /// Why, for the server's log.
    public var reason: String
    /// Whether the database refused this event itself (it would refuse it again), rather than being unavailable.
    public var refusedData: Bool

    /// Creates the error.
    public init(reason: String, refusedData: Bool = false) {
        self.reason = reason
        self.refusedData = refusedData
    }

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
