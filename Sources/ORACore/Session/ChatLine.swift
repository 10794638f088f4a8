/// One line of chat between the person at the machine and the helper, as both sides accept it: text only, 1 to
/// `longest` characters, not only spaces, without control characters (no line breaks, tabs or terminal escapes)
/// and without invisible formatting characters (which could make a line read differently from what it says). A
/// line that breaks a rule is refused, never cleaned up: what one side typed is exactly what the other sees.
public struct ChatLine: Sendable, Hashable, CustomStringConvertible {
    /// The most characters a line may have.
    public static let longest = 1_000
    /// The most bytes of UTF-8 a line may take: a character made of many combining marks counts as one character
    /// but not as one byte, and a line must fit in any message that carries it.
    public static let largest = 4_000

    /// The text, as typed.
    public let text: String

    /// Checks `text`.
    /// - Throws: `ChatLineError` saying which rule it breaks, and where.
    public init(_ text: String) throws(ChatLineError) {
        guard !text.allSatisfy(\.isWhitespace) else { throw .empty }
        // Whatever carried the text bounded it already (a frame, a request body), so counting is cheap.
        let bytes = text.utf8.count
        if bytes > Self.largest {
            let characters = text.count
            throw characters > Self.longest ? .tooLong(characters: characters) : .tooLarge(bytes: bytes)
        }
        guard bytes <= Self.longest || text.count <= Self.longest else { throw .tooLong(characters: text.count) }
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if AuditText.isControl(scalar) {
                throw .controlCharacter(scalar.value, position: Self.position(of: index, in: text))
            }
            if AuditText.isInvisibleFormatting(scalar) {
                throw .invisibleFormatting(scalar.value, position: Self.position(of: index, in: text))
            }
        }
        self.text = text
    }

    public var description: String { text }

    /// The 1-based character position of the scalar at `scalarIndex`.
    private static func position(of scalarIndex: Int, in text: String) -> Int {
        let scalars = text.unicodeScalars
        let index = scalars.index(scalars.startIndex, offsetBy: scalarIndex)
        return text[..<index].count + 1
    }
}

/// Why a chat line was refused.
public enum ChatLineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing but spaces, or nothing at all.
    case empty
    /// More than `ChatLine.longest` characters.
    case tooLong(characters: Int)
    /// More than `ChatLine.largest` bytes of UTF-8.
    case tooLarge(bytes: Int)
    /// A control character (a line break, tab, escape …), at a 1-based character position.
    case controlCharacter(UInt32, position: Int)
    /// An invisible formatting character (a bidirectional override, a zero-width character …).
    case invisibleFormatting(UInt32, position: Int)

    public var description: String {
        switch self {
        case .empty:
            "a chat message must not be empty"
        case .tooLong(let characters):
            "a chat message may have at most \(ChatLine.longest) characters, not \(characters)"
        case .tooLarge(let bytes):
            "a chat message may take at most \(ChatLine.largest) bytes of UTF-8, not \(bytes)"
        case .controlCharacter(let value, let position):
            "a chat message is one line of text: character \(position) is a control character (U+\(Self.hex(value)))"
        case .invisibleFormatting(let value, let position):
            "a chat message may not hide how it reads: character \(position) is an invisible formatting character "
                + "(U+\(Self.hex(value)))"
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
