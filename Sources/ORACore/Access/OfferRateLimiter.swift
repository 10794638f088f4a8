public import Foundation

/// Limits how often one machine is offered help: at most `offersPerWindow` offers to a machine within any `window`,
/// whoever makes them, so the person at the machine is not flooded with questions.
///
/// It keeps the times of the offers within the window, per machine, and forgets a machine once its offers are all
/// older than that (looked for every `sweepEvery` offers), so memory follows the machines offered help lately.
/// A value type with an explicit clock: the broker keeps one behind a lock; tests drive it with chosen times.
public struct OfferRateLimiter: Sendable {
    /// The answer for one offer.
    public enum Verdict: Sendable, Hashable {
        /// Go ahead; the offer is counted.
        case allowed
        /// Refused: the machine had `recent` offers within the window; the next may come after `retryAfter`.
        case limited(recent: Int, retryAfter: Duration)
    }

    /// How many offers one machine may have within the window.
    public let offersPerWindow: Int
    /// How far back offers count.
    public let window: Duration
    /// How many offers pass between two looks for machines to forget.
    public static let sweepEvery = 1_024
    private var offers: [String: [Date]] = [:]
    private var sinceSweep = 0

    /// Creates a limiter that allows `offersPerWindow` offers to one machine within `window`.
    public init(offersPerWindow: Int, window: Duration = .seconds(60)) {
        self.offersPerWindow = max(1, offersPerWindow)
        self.window = window
    }

    /// The machines it remembers offers for.
    public var machinesRemembered: Int { offers.count }

    /// Counts an offer to `machine` at `now`, unless the machine has had as many as it may within the window.
    public mutating func admit(_ machine: String, at now: Date) -> Verdict {
        sinceSweep += 1
        if sinceSweep >= Self.sweepEvery {
            sinceSweep = 0
            offers = offers.filter { _, times in times.contains { isRecent($0, at: now) } }
        }
        let recent = (offers[machine] ?? []).filter { isRecent($0, at: now) }
        guard recent.count < offersPerWindow else {
            offers[machine] = recent
            // The next offer may come once the oldest of these is out of the window.
            let oldest = recent.min() ?? now
            let waited = Duration.seconds(now.timeIntervalSince(oldest))
            return .limited(recent: recent.count, retryAfter: max(.zero, window - waited))
        }
        offers[machine] = recent + [now]
        return .allowed
    }

    private func isRecent(_ time: Date, at now: Date) -> Bool {
        Duration.seconds(now.timeIntervalSince(time)) < window
    }
}
