public import Foundation
public import OpenAPIRuntime

/// Reads the server's times exactly and writes them as it reads them.
///
/// The server writes audit times with six fractional digits and other times in whole seconds; the runtime's ISO 8601
/// transcoder reads neither exactly (fractions to milliseconds at best). This one keeps microseconds, and writes
/// whole seconds, the only form the server's request decoder takes.
public struct RFC3339Transcoder: DateTranscoder {
    public init() {}

    public func encode(_ date: Date) throws -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
    }

    public func decode(_ text: String) throws -> Date {
        guard let date = Self.date(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time"))
        }
        return date
    }

    /// `text` as a date: `2026-12-05T17:25:35Z`, with any fraction of a second and a `Z` or `±hh:mm` offset.
    public static func date(_ text: String) -> Date? {
        guard let dot = text.firstIndex(of: ".") else { return try? Date(text, strategy: .iso8601) }
        let digits = text[text.index(after: dot)...].prefix(while: \.isASCII).prefix(while: \.isNumber)
        guard !digits.isEmpty, let fraction = Double("0." + digits),
            let whole = try? Date(String(text[..<dot]) + text[digits.endIndex...], strategy: .iso8601)
        else { return nil }
        return whole.addingTimeInterval(fraction)
    }

    /// `date` in UTC with six fractional digits, as the server writes audit times.
    public static func microseconds(_ date: Date) -> String {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let seconds = Date(timeIntervalSince1970: (micros / 1_000_000).rounded(.down))
        let fraction = Int(micros - (micros / 1_000_000).rounded(.down) * 1_000_000)
        let text = seconds.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
        return text.dropLast() + "." + String(format: "%06d", fraction) + "Z"
    }
}

extension JSONDecoder {
    /// A decoder of the API's JSON outside the generated client (server-sent events, exported lines): times as
    /// ``RFC3339Transcoder`` reads them.
    public static func oraAPI() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try RFC3339Transcoder().decode(try decoder.singleValueContainer().decode(String.self))
        }
        return decoder
    }
}
