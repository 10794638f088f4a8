import ORACore
import Testing

@Suite("Chat lines")
struct ChatLineTests {
    @Test(
        "a line of text is accepted exactly as typed, markup included",
        arguments: [
            "Outlook keeps asking for my password",
            "<script>alert(1)</script>",
            "  leading and trailing spaces  ",
            "Grüße aus Köln — 日本語も 👋🏽",
            "a\\nb is a backslash and an n, not a line break",
            String(repeating: "x", count: ChatLine.longest),
            String(repeating: "é", count: ChatLine.longest),
            String(repeating: "👋", count: ChatLine.longest),
        ])
    func accepted(_ text: String) throws {
        #expect(try ChatLine(text).text == text)
    }

    /// A hundred characters of a letter and 30 combining marks each: 61 bytes a character, too large a line.
    static let heavilyAccented = String(
        repeating: "e" + String(repeating: "\u{0301}", count: 30), count: 100)

    @Test(
        "each broken rule is refused with what and where",
        arguments: [
            ("", ChatLineError.empty),
            ("   ", .empty),
            (String(repeating: "x", count: ChatLine.longest + 1), .tooLong(characters: ChatLine.longest + 1)),
            (String(repeating: "x", count: 100_000), .tooLong(characters: 100_000)),
            // Characters count, not bytes: a thousand four-byte characters are a line (above), one more is not.
            (String(repeating: "👋", count: ChatLine.longest + 1), .tooLong(characters: ChatLine.longest + 1)),
            (ChatLineTests.heavilyAccented, .tooLarge(bytes: 6_100)),
            ("two\nlines", .controlCharacter(0x0A, position: 4)),
            ("carriage\rreturn", .controlCharacter(0x0D, position: 9)),
            ("a\ttab", .controlCharacter(0x09, position: 2)),
            ("\u{1B}[2Jcleared", .controlCharacter(0x1B, position: 1)),
            ("nul\0", .controlCharacter(0x00, position: 4)),
            ("del\u{7F}", .controlCharacter(0x7F, position: 4)),
            ("c1\u{85}", .controlCharacter(0x85, position: 3)),
            ("line\u{2028}separator", .controlCharacter(0x2028, position: 5)),
            ("pay to \u{202E}0001 tnuocca", .invisibleFormatting(0x202E, position: 8)),
            ("zero\u{200B}width", .invisibleFormatting(0x200B, position: 5)),
            ("👋🏽\u{2066}", .invisibleFormatting(0x2066, position: 2)),
        ])
    func refused(_ text: String, _ error: ChatLineError) {
        #expect(throws: error) { try ChatLine(text) }
    }

    @Test("the refusals read as sentences")
    func sentences() {
        #expect(ChatLineError.empty.description == "a chat message must not be empty")
        #expect(
            ChatLineError.tooLong(characters: 1_500).description
                == "a chat message may have at most 1000 characters, not 1500")
        #expect(
            ChatLineError.tooLarge(bytes: 6_100).description
                == "a chat message may take at most 4000 bytes of UTF-8, not 6100")
        #expect(
            ChatLineError.controlCharacter(0x0A, position: 4).description
                == "a chat message is one line of text: character 4 is a control character (U+000A)")
        #expect(
            ChatLineError.invisibleFormatting(0x202E, position: 8).description
                == "a chat message may not hide how it reads: character 8 is an invisible formatting character (U+202E)"
        )
    }
}
