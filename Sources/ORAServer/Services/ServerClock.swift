public import Foundation
public import ORACore

/// The server's one clock, handed to every service that reads the time: the wall-clock time for what is recorded
/// and compared with stored times, and the monotonic instant for intervals and limits.
public struct ServerClock: Sendable {
    /// The wall-clock time now.
    public var now: @Sendable () -> Date
    /// The monotonic instant now.
    public var instant: @Sendable () -> ContinuousClock.Instant

    /// A clock reading `now` and `instant`.
    public init(
        now: @escaping @Sendable () -> Date, instant: @escaping @Sendable () -> ContinuousClock.Instant
    ) {
        self.now = now
        self.instant = instant
    }

    /// The system's clocks.
    public static let system = ServerClock(now: { Date() }, instant: { ContinuousClock.now })

    /// The wall-clock time now, as audit events and sessions record it.
    public var timestamp: AuditTimestamp { AuditTimestamp(now()) }
}
