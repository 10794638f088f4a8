/// Text from outside (user names, machine names, what an agent reports) is stored as data and escaped wherever it
/// is rendered, so that a value cannot forge a log line or a terminal sequence.
public enum AuditText {
    /// `text` as the database can store it: NUL, which PostgreSQL text cannot hold, becomes U+FFFD.
    public static func storable(_ text: String) -> String {
        guard text.unicodeScalars.contains("\0") else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : $0 }))
    }

    /// `text` for one line of a terminal or a log: control characters (CR, LF, ESC, DEL, C1 and the Unicode line
    /// and paragraph separators) become `\n`, `\r`, `\t` or `\u{…}` escapes, and a backslash is doubled, so the
    /// rendering is unambiguous.
    public static func escaped(_ text: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where isControl(scalar):
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || scalar.value == 0x2028
            || scalar.value == 0x2029
    }
}
