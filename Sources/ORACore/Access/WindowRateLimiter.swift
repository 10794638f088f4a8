public import Foundation

/// Limits how often something happens per key: at most `perWindow` times within any `window`. The broker keeps
/// one for offers (keyed by machine, so the person at the machine is not flooded with questions, whoever offers)
/// and one for chat lines (keyed by session and side).
///
/// It keeps the times within the window, per key, and forgets a key once its times are all older than that
/// (looked for every `sweepEvery` admissions), so memory follows the keys used lately. A value type with an
/// explicit clock: the broker keeps it behind a lock; tests drive it with chosen times.
public struct WindowRateLimiter: Sendable {
    /// The answer for one admission.
    public enum Verdict: Sendable, Hashable {
        /// Go ahead; it is counted.
        case allowed
        /// Refused: the key had `recent` admissions within the window; the next may come after `retryAfter`.
        case limited(recent: Int, retryAfter: Duration)
    }

    /// How many admissions one key may have within the window.
    public let perWindow: Int
    /// How far back admissions count.
    public let window: Duration
    /// How many admissions pass between two looks for keys to forget.
    public static let sweepEvery = 1_024
    private var times: [String: [Date]] = [:]
    private var sinceSweep = 0

    /// Creates a limiter that allows `perWindow` admissions of one key within `window`.
    public init(perWindow: Int, window: Duration = .seconds(60)) {
        self.perWindow = max(1, perWindow)
        self.window = window
    }

    /// The keys it remembers times for.
    public var keysRemembered: Int { times.count }

    /// Counts `key` at `now`, unless it has had as many admissions as it may within the window.
    public mutating func admit(_ key: String, at now: Date) -> Verdict {
        sinceSweep += 1
        if sinceSweep >= Self.sweepEvery {
            sinceSweep = 0
            times = times.filter { _, times in times.contains { isRecent($0, at: now) } }
        }
        let recent = (times[key] ?? []).filter { isRecent($0, at: now) }
        guard recent.count < perWindow else {
            times[key] = recent
            // The next may come once the oldest of these is out of the window.
            let oldest = recent.min() ?? now
            let waited = Duration.seconds(now.timeIntervalSince(oldest))
            return .limited(recent: recent.count, retryAfter: max(.zero, window - waited))
        }
        times[key] = recent + [now]
        return .allowed
    }

    private func isRecent(_ time: Date, at now: Date) -> Bool {
        Duration.seconds(now.timeIntervalSince(time)) < window
    }
}
