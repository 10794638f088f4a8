/// Text from outside (user names, machine names, what an agent reports) is stored as data and escaped wherever it
/// is rendered, so that a value cannot forge a log line or a terminal sequence.
public enum AuditText {
    /// `text` as the database can store it: NUL, which PostgreSQL text cannot hold, becomes U+FFFD.
    public static func storable(_ text: String) -> String {
        guard text.unicodeScalars.contains("\0") else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : $0 }))
    }

    /// `text` for one line of a terminal or a log: control characters (CR, LF, ESC, DEL, C1 and the Unicode line
    /// and paragraph separators) and invisible formatting characters (bidirectional overrides, zero-width
    /// characters) and U+FFFD (what a NUL is stored as) become `\n`, `\r`, `\t` or `\u{…}` escapes, and a backslash
    /// is doubled, so the rendering is unambiguous and reads in the order it was written.
    public static func escaped(_ text: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where mustBeEscaped(scalar):
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// `json` (a JSON document) for one line of a terminal or a log, still JSON: the characters `escaped` writes as
    /// escapes and JSON leaves as they are (DEL, C1 controls, line and paragraph separators, invisible formatting,
    /// U+FFFD) become `\uXXXX`; JSON's own escapes are kept as they are, not escaped again.
    public static func escapedJSON(_ json: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(json.unicodeScalars.count)
        for scalar in json.unicodeScalars {
            if mustBeEscaped(scalar) {
                let digits = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// What a NUL is stored as, and any character that could not be kept: shown escaped, so it is seen.
    static let replaced: Unicode.Scalar = "\u{FFFD}"

    /// Whether `scalar` is written as an escape in a line for a terminal or a log (both `escaped` forms).
    static func mustBeEscaped(_ scalar: Unicode.Scalar) -> Bool {
        isControl(scalar) || isInvisibleFormatting(scalar) || scalar == replaced
    }

    /// Whether `text` has at most `characters` characters (and so at most four times as many bytes): the bound
    /// every text from outside meets before it reaches an audit column or an index.
    public static func isBounded(_ text: String, to characters: Int) -> Bool {
        text.utf8.count <= characters || (text.utf8.count <= characters * 4 && text.count <= characters)
    }

    /// Whether `text` holds characters that change how the text around them is shown without being seen
    /// themselves: bidirectional overrides, embeddings and isolates (U+202A–202E, U+2066–2069), marks (U+200E,
    /// U+200F, U+061C) and zero-width characters (U+200B–200D, U+2060, U+FEFF). In a reason or a name they can make
    /// a question read differently from what it says.
    public static func hasInvisibleFormatting(_ text: String) -> Bool {
        text.unicodeScalars.contains(where: isInvisibleFormatting)
    }

    static func isInvisibleFormatting(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x202A...0x202E, 0x2066...0x2069, 0x200B...0x200F, 0x061C, 0x2060, 0xFEFF: true
        default: false
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || scalar.value == 0x2028
            || scalar.value == 0x2029
    }
}
