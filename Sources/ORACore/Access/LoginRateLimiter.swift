/// Counts failed logins per account and per source address over a sliding window, and says when to refuse
/// further attempts, so guessing passwords against the directory through ora is slow and visible.
///
/// An account is counted twice: under the normalised name before the directory is asked (`LoginName.key`), and
/// under the person's DN once the directory has found them (`admit(person:to:now:)`), so no spelling the directory
/// accepts escapes the count. It keeps at most `Limits.mostKeys` names, addresses and people each: past that the
/// least recently failed are forgotten, so a flood of made-up names costs bounded memory.
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
        /// The most names, addresses and people each that are remembered.
        public var mostKeys: Int

        /// Creates limits.
        public init(
            failuresPerAccount: Int = 5, failuresPerAddress: Int = 20, window: Duration = .seconds(300),
            mostKeys: Int = 50_000
        ) {
            self.failuresPerAccount = failuresPerAccount
            self.failuresPerAddress = failuresPerAddress
            self.window = window
            self.mostKeys = max(1, mostKeys)
        }
    }

    /// A login attempt in progress, counted as a failure until it is known to be something else.
    public struct Attempt: Sendable, Hashable {
        fileprivate let account: String
        fileprivate let address: String
        fileprivate let started: ContinuousClock.Instant
        /// The person's DN, normalised, once the directory has found them.
        public fileprivate(set) var person: String?
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
    private var personFailures: [String: [ContinuousClock.Instant]] = [:]

    /// Creates a limiter.
    public init(limits: Limits) {
        self.limits = limits
    }

    /// Starts an attempt for `account` (a `LoginName.key`) from `address` at `now`, or refuses it.
    public mutating func begin(account: String, address: String, now: ContinuousClock.Instant) -> Verdict {
        let accountKey = account.lowercased()
        let accountWait = wait(in: &accountFailures, key: accountKey, limit: limits.failuresPerAccount, now: now)
        let addressWait = wait(in: &addressFailures, key: address, limit: limits.failuresPerAddress, now: now)
        let longest = max(accountWait ?? .zero, addressWait ?? .zero)
        guard longest == .zero else { return .limited(retryAfter: longest) }
        accountFailures[accountKey, default: []].append(now)
        addressFailures[address, default: []].append(now)
        bound(now: now)
        return .allowed(Attempt(account: accountKey, address: address, started: now))
    }

    /// The directory found the attempt's person, `dn` (normalised): the attempt counts against them too, or is
    /// refused when they have failed too often, whatever name they were typed as.
    /// - Returns: how long to wait, when refused; the attempt then counts against nobody.
    public mutating func admit(
        person dn: String, to attempt: inout Attempt, now: ContinuousClock.Instant
    ) -> Duration? {
        if let wait = wait(in: &personFailures, key: dn, limit: limits.failuresPerAccount, now: now), wait > .zero {
            undecided(attempt)
            return wait
        }
        personFailures[dn, default: []].append(attempt.started)
        attempt.person = dn
        bound(now: now)
        return nil
    }

    /// The attempt logged in: the account's and the person's failures are forgotten, and the attempt no longer
    /// counts against the address (its earlier failures still do).
    public mutating func succeeded(_ attempt: Attempt) {
        accountFailures[attempt.account] = nil
        if let person = attempt.person { personFailures[person] = nil }
        remove(attempt.started, from: &addressFailures, key: attempt.address)
    }

    /// The directory could not decide the attempt: it counts against nobody.
    public mutating func undecided(_ attempt: Attempt) {
        remove(attempt.started, from: &accountFailures, key: attempt.account)
        remove(attempt.started, from: &addressFailures, key: attempt.address)
        if let person = attempt.person { remove(attempt.started, from: &personFailures, key: person) }
    }

    /// How many names, addresses and people are remembered now.
    public var rememberedKeys: (accounts: Int, addresses: Int, people: Int) {
        (accountFailures.count, addressFailures.count, personFailures.count)
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

    /// Keeps each table within `Limits.mostKeys`: expired failures go first, then the least recently failed keys.
    private mutating func bound(now: ContinuousClock.Instant) {
        let most = limits.mostKeys
        guard accountFailures.count > most || addressFailures.count > most || personFailures.count > most else {
            return
        }
        let window = limits.window
        func pruned(_ table: [String: [ContinuousClock.Instant]]) -> [String: [ContinuousClock.Instant]] {
            var kept = table.compactMapValues { times in
                let recent = times.filter { $0 + window > now }
                return recent.isEmpty ? nil : recent
            }
            // Still too many live keys (a flood): forget the least recently failed, down to nine tenths, so this
            // runs once per many attempts rather than at each.
            if kept.count > most {
                let excess = kept.count - most * 9 / 10
                for (key, _) in kept.sorted(by: { ($0.value.last ?? now) < ($1.value.last ?? now) }).prefix(excess) {
                    kept[key] = nil
                }
            }
            return kept
        }
        accountFailures = pruned(accountFailures)
        addressFailures = pruned(addressFailures)
        personFailures = pruned(personFailures)
    }
}
