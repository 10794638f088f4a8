public import Foundation
public import ORACore

/// A message as ora sends it: plain text in UTF-8, with files attached, rendered as MIME (RFC 5322, 2045–2047).
/// Everything from outside (names, the subject, the text, file names) is encoded, never written into a header as
/// it is, so that no value can add a header or a part.
public struct MailMessage: Sendable, Hashable {
    /// A file attached to the message.
    public struct Attachment: Sendable, Hashable {
        /// The file's name, as the recipient's mail program saves it.
        public var fileName: String
        /// Its MIME type.
        public var contentType: String
        /// Its content.
        public var content: Data

        /// Creates an attachment.
        public init(fileName: String, contentType: String, content: Data) {
            self.fileName = fileName
            self.contentType = contentType
            self.content = content
        }
    }

    /// Who sends it.
    public var from: MailAddress
    /// The name shown with the sender's address.
    public var fromName: String
    /// Whom it goes to.
    public var to: MailAddress
    /// The subject.
    public var subject: String
    /// The text.
    public var text: String
    /// The files attached.
    public var attachments: [Attachment]
    /// When it was written.
    public var date: Date
    /// Its unique id, without the angle brackets.
    public var messageID: String

    /// Creates a message.
    public init(
        from: MailAddress, fromName: String, to: MailAddress, subject: String, text: String,
        attachments: [Attachment] = [], date: Date, messageID: String
    ) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.subject = subject
        self.text = text
        self.attachments = attachments
        self.date = date
        self.messageID = messageID
    }

    /// The message as SMTP's DATA carries it: lines ending in CRLF, none longer than 78 characters, ASCII only.
    /// `boundary` separates the parts (any text that cannot occur in base64 and header lines does).
    public func rendered(boundary: String) -> String {
        var lines = [
            "Date: " + Self.dateText(date),
            "From: " + Self.encodedWords(fromName) + " <\(from)>",
            "To: <\(to)>",
            "Subject: " + Self.encodedWords(subject),
            "Message-ID: <\(Self.atom(messageID))>",
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
        ]
        if attachments.isEmpty {
            lines += Self.textPart(text)
        } else {
            lines += [
                "Content-Type: multipart/mixed; boundary=\"\(boundary)\"", "", "This is a message in MIME format.",
            ]
            lines += ["--" + boundary] + Self.textPart(text)
            for attachment in attachments {
                let name = Self.fileName(attachment.fileName)
                lines += [
                    "--" + boundary,
                    "Content-Type: \(Self.atom(attachment.contentType)); name=\"\(name)\"",
                    "Content-Disposition: attachment; filename=\"\(name)\"",
                    "Content-Transfer-Encoding: base64",
                    "",
                ]
                lines += Self.base64Lines(attachment.content)
            }
            lines.append("--" + boundary + "--")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    private static func textPart(_ text: String) -> [String] {
        // Line breaks become CRLF before encoding, as text/plain requires.
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        return ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", ""]
            + base64Lines(Data(normalized.utf8))
    }

    private static func base64Lines(_ data: Data) -> [String] {
        let encoded = data.base64EncodedString()
        var lines: [String] = []
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<end]))
            index = end
        }
        return lines
    }

    /// `text` as RFC 2047 encoded words (UTF-8, base64), one per line, so that no line is longer than 78
    /// characters even after the header's name. Control characters become spaces first.
    static func encodedWords(_ text: String) -> String {
        let clean = String(
            String.UnicodeScalarView(
                text.unicodeScalars.map {
                    $0.value < 0x20 || $0.value == 0x7f || (0x80...0x9f).contains($0.value) || $0 == "\u{2028}"
                        || $0 == "\u{2029}" ? " " : $0
                }))
        // 39 bytes of UTF-8 make 52 characters of base64, 64 with the word's frame.
        var words: [String] = []
        var chunk = Data()
        for character in clean {
            let bytes = Data(String(character).utf8)
            if chunk.count + bytes.count > 39, !chunk.isEmpty {
                words.append("=?utf-8?B?" + chunk.base64EncodedString() + "?=")
                chunk = Data()
            }
            chunk.append(bytes.prefix(39))
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?utf-8?B?" + chunk.base64EncodedString() + "?=") }
        return words.joined(separator: "\r\n ")
    }

    /// A file name as it may stand in a quoted header parameter: ASCII letters, digits, `.`, `-` and `_`; others
    /// become `_`.
    static func fileName(_ name: String) -> String {
        let safe = String(
            String.UnicodeScalarView(
                name.unicodeScalars.prefix(60).map {
                    $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
                        ? $0 : "_"
                }))
        return safe.isEmpty ? "attachment" : safe
    }

    /// A token of ora's own (a type, an id) with anything that could end a header removed.
    private static func atom(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.isASCII && $0.value > 0x20 && $0 != "\"" }))
    }

    /// RFC 5322's date, in UTC: `Sun, 06 Dec 2026 12:00:00 +0000`.
    static func dateText(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
