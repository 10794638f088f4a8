import Synchronization

/// Answers kept for a short time, so authorising a request does not query the directory every time.
///
/// An entry is never returned after its time to live, whatever happens to the directory: when it expires, the
/// next question goes to the directory again, and if the directory cannot answer, neither can ora. The number of
/// entries is bounded; when full, the entries closest to expiry make room.
public final class DirectoryCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var expires: ContinuousClock.Instant
    }

    private let timeToLive: Duration
    private let capacity: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let entries: Mutex<[Key: Entry]> = Mutex([:])

    /// Creates a cache.
    /// - Parameters:
    ///   - timeToLive: how long an answer is reused.
    ///   - capacity: the most answers kept.
    ///   - now: the clock; tests inject their own.
    public init(
        timeToLive: Duration,
        capacity: Int,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.timeToLive = timeToLive
        self.capacity = max(0, capacity)
        self.now = now
    }

    /// The value for `key` if it has not expired.
    public func value(for key: Key) -> Value? {
        let now = now()
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    /// Stores `value` for `key` for the time to live.
    public func store(_ value: Value, for key: Key) {
        guard capacity > 0, timeToLive > .zero else { return }
        let now = now()
        let expires = now + timeToLive
        entries.withLock { entries in
            if entries[key] == nil, entries.count >= capacity {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= capacity {
                    // Evict the tenth of the entries that expire soonest, so a full cache does not sort every time.
                    let victims = entries.sorted { $0.value.expires < $1.value.expires }.prefix(max(1, capacity / 10))
                    for victim in victims { entries[victim.key] = nil }
                }
            }
            entries[key] = Entry(value: value, expires: expires)
        }
    }
}
