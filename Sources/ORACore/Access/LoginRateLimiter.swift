/// Counts failed logins per account and per source address over a sliding window, and says when to refuse
/// further attempts, so guessing passwords against the directory through ora is slow and visible.
///
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

    /// The answer for one attempt.
    public enum Verdict: Sendable, Equatable {
        /// Go ahead.
        case allowed
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

    /// Whether an attempt for `account` from `address` may go ahead at `now`.
    public mutating func check(account: String, address: String, now: ContinuousClock.Instant) -> Verdict {
        let accountKey = account.lowercased()
        let accountWait = wait(in: &accountFailures, key: accountKey, limit: limits.failuresPerAccount, now: now)
        let addressWait = wait(in: &addressFailures, key: address, limit: limits.failuresPerAddress, now: now)
        let longest = max(accountWait ?? .zero, addressWait ?? .zero)
        return longest > .zero ? .limited(retryAfter: longest) : .allowed
    }

    /// Records a failed attempt.
    public mutating func recordFailure(account: String, address: String, now: ContinuousClock.Instant) {
        accountFailures[account.lowercased(), default: []].append(now)
        addressFailures[address, default: []].append(now)
        if accountFailures.count + addressFailures.count > 100_000 { prune(now: now) }
    }

    /// Forgets the account's failures after it logged in successfully (the address's failures stay).
    public mutating func recordSuccess(account: String) {
        accountFailures[account.lowercased()] = nil
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
