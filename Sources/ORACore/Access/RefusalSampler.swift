/// Decides which refusals of one kind are written to the audit log one by one: at most `perMinute` per source a
/// minute. The rest are counted, and the count is carried by the next refusal recorded for that source, so a flood
/// is visible without a row for each request: anyone who can reach a port can be refused, and must not be able to
/// fill the audit log, or its writer, with that. Memory is bounded by `mostSources`.
public struct RefusalSampler: Sendable {
    /// What to do with one refusal.
    public enum Sample: Sendable, Hashable {
        /// Record it, with how many refusals from the same source were counted and not recorded before it.
        case record(suppressedBefore: Int)
        /// Count it only.
        case suppress
    }

    private struct Window: Sendable {
        var since: ContinuousClock.Instant
        var recorded: Int
        var suppressed: Int
    }

    /// The most refusals recorded per source a minute.
    public let perMinute: Int
    /// The most sources remembered; past that, the oldest windows are forgotten.
    public let mostSources: Int
    private var windows: [String: Window] = [:]
    /// Suppressed refusals whose window was forgotten before any refusal carried them.
    private var unreported = 0

    /// Creates a sampler.
    public init(perMinute: Int, mostSources: Int = 10_000) {
        self.perMinute = perMinute
        self.mostSources = max(1, mostSources)
    }

    /// Counts a refusal from `source` at `now` and says whether to record it.
    public mutating func sample(from source: String, now: ContinuousClock.Instant) -> Sample {
        var carried = 0
        if var window = windows[source], now - window.since < .seconds(60) {
            guard window.recorded < perMinute else {
                window.suppressed += 1
                windows[source] = window
                return .suppress
            }
            window.recorded += 1
            windows[source] = window
            return .record(suppressedBefore: 0)
        } else if let old = windows[source] {
            carried = old.suppressed
        }
        if windows[source] == nil, windows.count >= mostSources { forgetOldest(now: now) }
        windows[source] = Window(since: now, recorded: 1, suppressed: 0)
        carried += unreported
        unreported = 0
        return .record(suppressedBefore: carried)
    }

    private mutating func forgetOldest(now: ContinuousClock.Instant) {
        let expired = windows.filter { now - $0.value.since >= .seconds(60) }
        for (key, window) in expired {
            unreported += window.suppressed
            windows[key] = nil
        }
        guard windows.count >= mostSources else { return }
        for (key, window) in windows.sorted(by: { $0.value.since < $1.value.since }).prefix(mostSources / 10 + 1) {
            unreported += window.suppressed
            windows[key] = nil
        }
    }
}
