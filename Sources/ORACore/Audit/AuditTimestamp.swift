public import Foundation

/// A moment with the precision PostgreSQL keeps: whole microseconds since 1970-01-01 00:00:00 UTC. Audit events
/// carry this, not `Date`, so that the time hashed is exactly the time stored.
public struct AuditTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds since the Unix epoch.
    public var microseconds: Int64

    /// Creates a timestamp from microseconds since the Unix epoch.
    public init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    /// `date`, truncated to whole microseconds.
    public init(_ date: Date) {
        microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
    }

    /// The same moment as a `Date`.
    public var date: Date { Date(timeIntervalSince1970: Double(microseconds) / 1_000_000) }

    public static func < (lhs: AuditTimestamp, rhs: AuditTimestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    /// RFC 3339 in UTC with exactly six fractional digits, such as `2026-11-22T09:30:00.000000Z`: the form in the
    /// canonical encoding.
    public var description: String {
        var text: [UInt8] = []
        appendText(to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends `description`'s UTF-8 to `bytes`, without making a string first.
    func appendText(to bytes: inout [UInt8]) {
        let (seconds, fraction) = microseconds.floorDividedBy(1_000_000)
        let (days, secondOfDay) = seconds.floorDividedBy(86_400)
        let (year, month, day) = Self.civil(fromDays: days)
        bytes.reserveCapacity(bytes.count + 27)
        if year < 0 || year > 9999 {
            // Outside four digits (never a real event's time): as the general formatting pads.
            let digits = String(year)
            bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, 4 - digits.count)))
            bytes.append(contentsOf: digits.utf8)
        } else {
            Self.append(year, digits: 4, to: &bytes)
        }
        func field(_ separator: Unicode.Scalar, _ value: Int64, _ digits: Int) {
            bytes.append(UInt8(ascii: separator))
            Self.append(value, digits: digits, to: &bytes)
        }
        field("-", month, 2)
        field("-", day, 2)
        field("T", secondOfDay / 3600, 2)
        field(":", secondOfDay / 60 % 60, 2)
        field(":", secondOfDay % 60, 2)
        field(".", fraction, 6)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Appends non-negative `value` as exactly `digits` decimal digits.
    private static func append(_ value: Int64, digits: Int, to bytes: inout [UInt8]) {
        var divisor: Int64 = 1
        for _ in 1..<digits { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Year, month and day of the proleptic Gregorian calendar for days since 1970-01-01 (Howard Hinnant's
    /// `civil_from_days`).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    /// Quotient and remainder rounded towards negative infinity, so times before 1970 format correctly.
    fileprivate func floorDividedBy(_ divisor: Int64) -> (Int64, Int64) {
        let quotient = self / divisor
        let remainder = self % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }
}
