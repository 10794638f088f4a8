import Synchronization

/// Bounds how many session event streams one operator keeps open at once, so that one account (or a script holding
/// its token) cannot tie up the server with streams that never end while their sessions last.
final class EventStreamSlots: Sendable {
    /// One open stream; its slot is free again when the stream's response is gone, however it ended.
    final class Slot: Sendable {
        private let release: @Sendable () -> Void

        fileprivate init(release: @escaping @Sendable () -> Void) {
            self.release = release
        }

        deinit { release() }
    }

    /// The most streams one operator may have open.
    let perOperator: Int
    private let open = Mutex<[String: Int]>([:])

    init(perOperator: Int = 16) {
        self.perOperator = perOperator
    }

    /// A slot for `operatorDN`'s new stream, or `nil` when they have `perOperator` open already.
    func take(for operatorDN: String) -> Slot? {
        let key = operatorDN.lowercased()
        let taken = open.withLock { open in
            guard open[key, default: 0] < perOperator else { return false }
            open[key, default: 0] += 1
            return true
        }
        guard taken else { return nil }
        return Slot { [weak self] in
            self?.open.withLock { open in
                open[key, default: 1] -= 1
                if open[key] == 0 { open[key] = nil }
            }
        }
    }

    /// How many streams `operatorDN` has open.
    func count(for operatorDN: String) -> Int {
        open.withLock { $0[operatorDN.lowercased(), default: 0] }
    }
}
