import Synchronization

/// Wakes a waiting loop before its time: `signal()` from anywhere, `wait(atMost:)` in the loop. A signal given while
/// the loop is busy is kept (one, however many came) and ends its next wait at once, so no change is missed.
final class Wakeup: Sendable {
    private struct State {
        /// A signal came while nobody waited.
        var signalled = false
        /// The loop waiting now.
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// Ends the current or next wait.
    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns at the first signal (or one kept from before), when `limit` has passed, or when the task is
    /// cancelled, whichever comes first. One loop waits at a time.
    func wait(atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if (try? await Task.sleep(for: limit)) != nil { self.signal() }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { state -> Bool in
                        if state.signalled {
                            state.signalled = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                signal()
            }
            group.cancelAll()
        }
    }
}
