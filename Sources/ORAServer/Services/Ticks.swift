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
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            do {
                try await body()
            } catch {
                if Task.isCancelled { break }
                logger.warning("\(failure)", metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            }
            try? await Task.sleep(for: pause)
        }
    }
}
