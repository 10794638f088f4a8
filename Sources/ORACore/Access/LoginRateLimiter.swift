/// Counts failed logins per account and per source address over a sliding window, and says when to refuse
/// further attempts, so guessing passwords against the directory through ora is slow and visible.
///
/// An attempt counts as a failure from the moment it begins, so concurrent guesses cannot all pass the check while
/// the directory is still deciding the first; a success or an attempt the directory could not decide takes it back.
/// A value type with an explicit clock: the server keeps one behind a lock; tests drive it with chosen times.
public struct LoginRateLimiter: Sendable {
    /// The limits.
    public struct Limits: Sendable, Hashable {
        /// Failures allowed per account within the window.
        public var failuresPerAccount: Int
        /// Failures allowed per source address within the window.
        public var failuresPerAddress: Int
        /// How far back failures count.
        public var window: Duration

        /// Creates limits.
        public init(failuresPerAccount: Int = 5, failuresPerAddress: Int = 20, window: Duration = .seconds(300)) {
            self.failuresPerAccount = failuresPerAccount
            self.failuresPerAddress = failuresPerAddress
            self.window = window
        }
    }

    /// A login attempt in progress, counted as a failure until it is known to be something else.
    public struct Attempt: Sendable, Hashable {
        fileprivate let account: String
        fileprivate let address: String
        fileprivate let started: ContinuousClock.Instant
    }

    /// The answer for one attempt.
    public enum Verdict: Sendable, Equatable {
        /// Go ahead; report how it ended with `succeeded(_:)` or `undecided(_:)` (a failure needs nothing more).
        case allowed(Attempt)
        /// Refuse; the caller may try again after this long.
        case limited(retryAfter: Duration)
    }

    /// The limits in force.
    public let limits: Limits
    private var accountFailures: [String: [ContinuousClock.Instant]] = [:]
    private var addressFailures: [String: [ContinuousClock.Instant]] = [:]

    /// Creates a limiter.
    public init(limits: Limits) {
        self.limits = limits
    }

    /// Starts an attempt for `account` from `address` at `now`, or refuses it.
    public mutating func begin(account: String, address: String, now: ContinuousClock.Instant) -> Verdict {
        let accountKey = account.lowercased()
        let accountWait = wait(in: &accountFailures, key: accountKey, limit: limits.failuresPerAccount, now: now)
        let addressWait = wait(in: &addressFailures, key: address, limit: limits.failuresPerAddress, now: now)
        let longest = max(accountWait ?? .zero, addressWait ?? .zero)
        guard longest == .zero else { return .limited(retryAfter: longest) }
        accountFailures[accountKey, default: []].append(now)
        addressFailures[address, default: []].append(now)
        if accountFailures.count + addressFailures.count > 100_000 { prune(now: now) }
        return .allowed(Attempt(account: accountKey, address: address, started: now))
    }

    /// The attempt logged in: the account's failures are forgotten, and the attempt no longer counts against the
    /// address (its earlier failures still do).
    public mutating func succeeded(_ attempt: Attempt) {
        accountFailures[attempt.account] = nil
        remove(attempt.started, from: &addressFailures, key: attempt.address)
    }

    /// The directory could not decide the attempt: it counts against nobody.
    public mutating func undecided(_ attempt: Attempt) {
        remove(attempt.started, from: &accountFailures, key: attempt.account)
        remove(attempt.started, from: &addressFailures, key: attempt.address)
    }

    private func wait(
        in failures: inout [String: [ContinuousClock.Instant]],
        key: String,
        limit: Int,
        now: ContinuousClock.Instant
    ) -> Duration? {
        guard var times = failures[key] else { return nil }
        times.removeAll { $0 + limits.window <= now }
        failures[key] = times.isEmpty ? nil : times
        guard times.count >= limit, let oldest = times.first else { return nil }
        return oldest + limits.window - now
    }

    private func remove(
        _ instant: ContinuousClock.Instant,
        from failures: inout [String: [ContinuousClock.Instant]],
        key: String
    ) {
        guard var times = failures[key], let index = times.firstIndex(of: instant) else { return }
        times.remove(at: index)
        failures[key] = times.isEmpty ? nil : times
    }

    private mutating func prune(now: ContinuousClock.Instant) {
        let window = limits.window
        accountFailures = accountFailures.compactMapValues { times in
            let kept = times.filter { $0 + window > now }
            return kept.isEmpty ? nil : kept
        }
        addressFailures = addressFailures.compactMapValues { times in
            let kept = times.filter { $0 + window > now }
            return kept.isEmpty ? nil : kept
        }
    }
}
