/// Wakes a waiting loop before its time: `signal()` from anywhere, `wait(atMost:)` in the loop. A signal given while
/// the loop is busy is kept (one, however many came) and ends its next wait at once, so no change is missed.
final class Wakeup: Sendable {
    private let signals: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (signals, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Ends the current or next wait.
    func signal() {
        continuation.yield()
    }

    /// Returns at the first signal (or one kept from before), when `limit` has passed, or when the task is
    /// cancelled, whichever comes first. One loop waits at a time.
    func wait(atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: limit) }
            group.addTask { [signals] in
                for await _ in signals { return }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
