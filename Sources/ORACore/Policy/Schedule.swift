public import Foundation

/// When a policy applies: days of the week and a time window, in a named time zone.
public struct Schedule: Sendable, Hashable {
    /// A day of the week, as administrators write it.
    public enum Day: String, Sendable, Hashable, CaseIterable, Comparable {
        case mon, tue, wed, thu, fri, sat, sun

        /// Foundation's weekday number (Sunday is 1).
        var weekday: Int {
            switch self {
            case .sun: return 1
            case .mon: return 2
            case .tue: return 3
            case .wed: return 4
            case .thu: return 5
            case .fri: return 6
            case .sat: return 7
            }
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.weekday < rhs.weekday }
    }

    /// The IANA time zone the days and hours are in, such as `Europe/Berlin`.
    public var timeZone: TimeZone
    /// The days on which the window opens.
    public var days: Set<Day>
    /// Minutes after local midnight when the window opens.
    public var startMinute: Int
    /// Minutes after local midnight when it closes; at or before `startMinute` means it closes the next day.
    public var endMinute: Int

    /// Creates a schedule.
    public init(timeZone: TimeZone, days: Set<Day>, startMinute: Int, endMinute: Int) {
        self.timeZone = timeZone
        self.days = days
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    /// Whether `date` falls inside the schedule. A window that crosses midnight ("22:00-06:00") belongs to the day it
    /// opens on: Friday 22:00 to Saturday 06:00 is Friday's.
    public func contains(_ date: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return false }
        let now = hour * 60 + minute
        let today = days.contains { $0.weekday == weekday }
        if startMinute < endMinute {
            return today && now >= startMinute && now < endMinute
        }
        // Crosses midnight: the evening part belongs to today, the early-morning part to yesterday's window.
        let yesterday = days.contains { $0.weekday == (weekday + 5) % 7 + 1 }
        return (today && now >= startMinute) || (yesterday && now < endMinute)
    }

    /// `mon-fri 07:00-19:00 Europe/Berlin`, for explanations.
    public var summary: String {
        let dayList = days.sorted().map(\.rawValue).joined(separator: ",")
        return "\(dayList) \(Self.format(startMinute))-\(Self.format(endMinute)) \(timeZone.identifier)"
    }

    static func format(_ minute: Int) -> String {
        let hours = minute / 60
        let minutes = minute % 60
        return (hours < 10 ? "0" : "") + "\(hours):" + (minutes < 10 ? "0" : "") + "\(minutes)"
    }
}
