public import Foundation
import Glibc
public import Logging
public import ORACore
public import ORAStore
public import ServiceLifecycle
import Synchronization

/// Records the events of steps that end access — a session ended, control stopped or refused, a screen closed —
/// which must never wait for the audit log and never be lost.
///
/// Granting access waits for its record (fail closed); ending it does not: the end takes effect at once, and its
/// events are handed here. They are appended to a local journal file (flushed to disk) before anything else, then
/// written to the audit log in order, one after another, retried until stored. A server stopped meanwhile finds
/// them in the journal when it starts again, and stores each one not yet in the log exactly once.
public final class AuditJournal: Service, Sendable {
    private struct Waiter: Sendable {
        let id: UUID
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State: Sendable {
        /// The events not yet stored, oldest first.
        var pending: [AuditEvent] = []
        /// Callers waiting for an event to be stored (or given up on), by the event's id.
        var waiters: [UUID: [CheckedContinuation<Void, Never>]] = [:]
        /// Whether the journal file has been read back at start, so it may be emptied once all is stored.
        var replayed = false
    }

    private let writer: AuditWriter
    private let log: AuditLog
    private let file: JournalFile?
    private let logger: Logger
    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// The longest pause between two attempts while the audit log cannot take an event.
    private let longestPause: Duration

    /// Creates the journal.
    /// - Parameters:
    ///   - path: the journal file, created with mode 0600 if missing; `nil` keeps pending events in memory only (they
    ///     are lost if the server stops before the database is back; the server warns at start).
    /// - Throws: `AuditJournalError` when the file cannot be opened or read.
    public init(
        writer: AuditWriter, log: AuditLog, path: String?, logger: Logger, longestPause: Duration = .seconds(5)
    ) throws(AuditJournalError) {
        self.writer = writer
        self.log = log
        self.logger = logger
        self.longestPause = longestPause
        if let path {
            let file = try JournalFile(path: path)
            self.file = file
            state.withLock { $0.pending = file.unstored }
        } else {
            file = nil
        }
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// How many events wait to be stored.
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Takes `events`, in this order, to be stored as soon as the audit log can take them. They are in the journal
    /// file when this returns (unless it cannot be written, which is logged: the events are kept in memory still).
    public func record(_ events: [AuditEvent]) {
        guard !events.isEmpty else { return }
        do {
            try file?.append(events)
        } catch {
            logger.error(
                "could not write ending events to the audit journal; they are kept in memory until stored",
                metadata: ["error": "\(error.description)", "audit.events": "\(events.count)"])
        }
        state.withLock { $0.pending.append(contentsOf: events) }
        wake.yield()
    }

    /// Waits until `event` is stored, or `limit` has passed, whichever comes first.
    /// - Returns: whether it is stored.
    @discardableResult
    public func waitUntilStored(_ event: UUID, atMost limit: Duration) async -> Bool {
        guard limit > .zero, isPending(event) else { return !isPending(event) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let waiting = self.state.withLock { state -> Bool in
                            guard state.pending.contains(where: { $0.id == event }) else { return false }
                            state.waiters[event, default: []].append(continuation)
                            return true
                        }
                        if !waiting { continuation.resume() }
                    }
                } onCancel: {
                    self.release(event)
                }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
        return !isPending(event)
    }

    /// Stores what waits, in order, until graceful shutdown; then tries once more for a few seconds, and leaves what
    /// is still not stored in the journal for the next start.
    public func run() async {
        await replay()
        // What the journal held at start is stored first.
        wake.yield()
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                await drain(until: nil)
            }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        await drain(until: .now + .seconds(5))
        let left = pendingCount
        if left > 0 {
            logger.warning(
                "stopping with ending events not yet in the audit log",
                metadata: [
                    "audit.events": "\(left)",
                    "audit.journal":
                        "\(file.map { "kept in \($0.path) for the next start" } ?? "lost: no journal file is configured")",
                ])
        }
        state.withLock { state in
            for continuation in state.waiters.values.joined() { continuation.resume() }
            state.waiters = [:]
        }
    }

    /// Drops the events from the journal file that a server stopped before it could mark stored, but that are in
    /// the log: they were written, and are not written again.
    private func replay() async {
        let unstored = state.withLock { $0.pending }
        guard !unstored.isEmpty else {
            state.withLock { $0.replayed = true }
            return
        }
        logger.notice("ending events from the audit journal to store", metadata: ["audit.events": "\(unstored.count)"])
        var pause = Duration.milliseconds(100)
        while true {
            do {
                let stored = try await log.storedIDs(of: unstored)
                for id in stored { markStored(id) }
                break
            } catch {
                if Task.isCancelled { return }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, longestPause)
            }
        }
        state.withLock { $0.replayed = true }
    }

    private func drain(until deadline: ContinuousClock.Instant?) async {
        var pause = Duration.milliseconds(100)
        var failed = false
        while let next = state.withLock({ $0.pending.first }) {
            if let deadline {
                if ContinuousClock.now >= deadline { return }
            } else if Task.isShuttingDownGracefully {
                // Stopping: `run` tries once more, for a bounded time.
                return
            }
            do {
                // After a failure the event may have been committed without the answer arriving: looked for first.
                if failed, try await log.storedIDs(of: [next]).contains(next.id) {
                    markStored(next.id)
                    continue
                }
                try await writer.record(next)
                markStored(next.id)
                failed = false
                pause = .milliseconds(100)
            } catch let error as AuditUnavailableError where error.refusedData {
                logger.error(
                    "the audit log refuses an ending event; it is dropped from the journal",
                    metadata: [
                        "audit.event": "\(next.name)", "audit.event.id": "\(next.id)", "error": "\(error.reason)",
                    ])
                markStored(next.id)
            } catch {
                if !failed {
                    logger.warning(
                        "ending events wait for the audit log",
                        metadata: ["audit.events": "\(pendingCount)", "error": "\(error)"])
                }
                failed = true
                if let deadline, ContinuousClock.now + pause >= deadline { return }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, longestPause)
            }
        }
    }

    private func isPending(_ id: UUID) -> Bool {
        state.withLock { $0.pending.contains { $0.id == id } }
    }

    private func markStored(_ id: UUID) {
        let (waiters, empty) = state.withLock { state in
            state.pending.removeAll { $0.id == id }
            return (state.waiters.removeValue(forKey: id) ?? [], state.pending.isEmpty && state.replayed)
        }
        do {
            try file?.markStored(id, emptying: empty)
        } catch {
            logger.error(
                "could not mark an event stored in the audit journal; it will be looked for at the next start",
                metadata: ["error": "\(error.description)"])
        }
        for waiter in waiters { waiter.resume() }
    }

    private func release(_ id: UUID) {
        let waiters = state.withLock { $0.waiters.removeValue(forKey: id) ?? [] }
        for waiter in waiters { waiter.resume() }
    }
}

/// The journal could not be used.
public struct AuditJournalError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, with the file's path.
    public var description: String
}

/// The journal's file: one JSON object a line, `{"event": …}` for an event to store and `{"stored": "<id>"}` once it
/// is; emptied when nothing is left to store. Every append is flushed to disk before it returns.
private final class JournalFile: Sendable {
    private struct Line: Codable {
        var event: AuditEvent?
        var stored: UUID?
    }

    let path: String
    /// The events written and not marked stored, in order, as read at start.
    let unstored: [AuditEvent]
    private let descriptor: Mutex<Int32>

    init(path: String) throws(AuditJournalError) {
        self.path = path
        let opened = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard opened >= 0 else {
            throw AuditJournalError(
                description: "cannot open the audit journal \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = Mutex(opened)
        guard let data = FileManager.default.contents(atPath: path) else {
            close(opened)
            throw AuditJournalError(description: "cannot read the audit journal \(path)")
        }
        var events: [AuditEvent] = []
        var stored: Set<UUID> = []
        let decoder = JSONDecoder()
        let lines = data.split(separator: UInt8(ascii: "\n"))
        for (number, line) in lines.enumerated() {
            guard let entry = try? decoder.decode(Line.self, from: line) else {
                // A line cut short by a crash in the middle of its write is the last one, without its newline: its
                // append never returned. Anything else is damage, and the server does not start on it.
                if number == lines.count - 1, data.last != UInt8(ascii: "\n") {
                    // Cut off, so the next append starts a line of its own.
                    let whole = off_t(data.count - line.count)
                    guard ftruncate(opened, whole) == 0 else {
                        close(opened)
                        throw AuditJournalError(description: "cannot repair the audit journal \(path)")
                    }
                    break
                }
                close(opened)
                throw AuditJournalError(description: "line \(number + 1) of the audit journal \(path) is not readable")
            }
            if let event = entry.event { events.append(event) }
            if let id = entry.stored { stored.insert(id) }
        }
        unstored = events.filter { !stored.contains($0.id) }
    }

    deinit {
        descriptor.withLock { _ = close($0) }
    }

    func append(_ events: [AuditEvent]) throws(AuditJournalError) {
        let encoder = JSONEncoder()
        var bytes: [UInt8] = []
        for event in events {
            guard let line = try? encoder.encode(Line(event: event)) else {
                throw AuditJournalError(description: "cannot encode an event for the audit journal")
            }
            bytes += line
            bytes.append(UInt8(ascii: "\n"))
        }
        try write(bytes)
    }

    func markStored(_ id: UUID, emptying: Bool) throws(AuditJournalError) {
        if emptying {
            let failed = descriptor.withLock { ftruncate($0, 0) != 0 || fsync($0) != 0 }
            if failed { throw AuditJournalError(description: "cannot empty the audit journal \(path)") }
            return
        }
        guard let line = try? JSONEncoder().encode(Line(stored: id)) else { return }
        try write(Array(line) + [UInt8(ascii: "\n")])
    }

    private func write(_ bytes: [UInt8]) throws(AuditJournalError) {
        let error = descriptor.withLock { descriptor -> Int32? in
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { buffer in
                    Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return fsync(descriptor) == 0 ? nil : errno
        }
        if let error {
            throw AuditJournalError(
                description: "cannot write the audit journal \(path): \(String(cString: strerror(error)))")
        }
    }
}
