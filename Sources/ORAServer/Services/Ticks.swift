import Logging
import ORAStore
import ServiceLifecycle

/// A tick every `interval`, the first one interval from now, until the task is cancelled or the service group
/// shuts down gracefully: the loop of a service that does something every so often.
struct Ticks: AsyncSequence, Sendable {
    typealias Element = Void
    let interval: Duration

    /// Ticks every `interval`.
    init(every interval: Duration) {
        self.interval = interval
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let interval: Duration

        mutating func next() async -> Void? {
            guard (try? await Task.sleep(for: interval)) != nil, !Task.isCancelled else { return nil }
            return ()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(interval: interval)
    }

    /// The ticks, ending at graceful shutdown too.
    static func every(_ interval: Duration) -> AsyncCancelOnGracefulShutdownSequence<Ticks> {
        Ticks(every: interval).cancelOnGracefulShutdown()
    }
}

/// Runs `body` until graceful shutdown, again `pause` after each time it fails (or returns), logging each failure
/// as `failure`: the loop of a service that listens on a connection that may break.
func keepRunning(
    logging failure: String, logger: Logger, pause: Duration = .seconds(1),
    _ body: @escaping @Sendable () async throws -> Void
) async {
    await keepRunning(logging: failure, logger: logger, pause: pause, longestPause: pause) {
        try await body()
        return true
    }
}

/// Runs `body` until graceful shutdown, again after each time it fails or returns, logging each failure as
/// `failure`. The pause starts at `pause` and doubles, up to `longestPause`, while runs fail or come to nothing;
/// a run that made progress (`body` returned `true`) sets it back to `pause`.
func keepRunning(
    logging failure: String, logger: Logger, pause: Duration, longestPause: Duration,
    _ body: @escaping @Sendable () async throws -> Bool
) async {
    await cancelWhenGracefulShutdown {
        var next = pause
        while !Task.isCancelled {
            do {
                if try await body() { next = pause }
            } catch {
                if Task.isCancelled { break }
                logger.warning("\(failure)", metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            }
            try? await Task.sleep(for: next)
            next = min(next * 2, longestPause)
        }
    }
}
