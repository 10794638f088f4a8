import Foundation
import ORACore
import Testing

@testable import ORAMail

@Suite struct MailMessageTests {
    private func message(
        subject: String = "Help", fromName: String = "ora", text: String = "Hello"
    ) throws
        -> MailMessage
    {
        MailMessage(
            from: try MailAddress("ora@corp.example"), fromName: fromName,
            to: try MailAddress("lena.wolf@corp.example"),
            subject: subject, text: text,
            attachments: [
                .init(fileName: "WS-0101 ü.orainvite", contentType: "application/json", content: Data(count: 200))
            ],
            date: Date(timeIntervalSince1970: 1_796_558_400), messageID: "1234@corp.example")
    }

    @Test func headersAndPartsAreWrittenAsMIMERequires() throws {
        let rendered = try message().rendered(boundary: "b-1")
        let lines = rendered.components(separatedBy: "\r\n")
        #expect(lines.contains("Date: Sun, 06 Dec 2026 12:00:00 +0000"))
        #expect(lines.contains("To: <lena.wolf@corp.example>"))
        #expect(lines.contains("Message-ID: <1234@corp.example>"))
        #expect(lines.contains("Content-Type: multipart/mixed; boundary=\"b-1\""))
        #expect(lines.contains("Content-Disposition: attachment; filename=\"WS-0101__.orainvite\""))
        #expect(lines.last == "" && lines.dropLast().last == "--b-1--")
        #expect(lines.allSatisfy { $0.utf8.count <= 78 && $0.unicodeScalars.allSatisfy(\.isASCII) })
        #expect(rendered.replacingOccurrences(of: "\r\n", with: "").contains("\n") == false)
    }

    @Test func textFromOutsideCannotAddAHeaderOrAPart() throws {
        let hostile = "Help\r\nBcc: mallory@evil.example\r\n\r\n--b-1\r\nContent-Type: text/html"
        let rendered = try message(subject: hostile, fromName: hostile, text: hostile).rendered(boundary: "b-1")
        let lines = rendered.components(separatedBy: "\r\n")
        #expect(!lines.contains { $0.lowercased().hasPrefix("bcc:") })
        #expect(lines.filter { $0 == "--b-1" }.count == 2)
        #expect(!lines.contains("Content-Type: text/html"))
        // The subject is encoded words, one per folded line, that decode to the text with its breaks as spaces.
        let subject = lines.drop { !$0.hasPrefix("Subject: ") }.prefix {
            $0.hasPrefix("Subject: ") || $0.hasPrefix(" ")
        }
        let decoded = subject.map { line in
            let word = line.drop { $0 != "=" }.dropFirst(10).dropLast(2)
            return String(decoding: Data(base64Encoded: String(word)) ?? Data(), as: UTF8.self)
        }.joined()
        #expect(decoded == "Help  Bcc: mallory@evil.example    --b-1  Content-Type: text/html")
    }

    @Test func linesStartingWithADotAreDoubled() {
        #expect(SMTPClient.dotStuffed("a\r\n.\r\n..b\r\n") == "a\r\n..\r\n...b\r\n")
    }

    @Test(
        arguments: [
            ("lena.wolf@corp.example", nil),
            ("Lena.Wolf+ora@CORP.Example", nil),
            ("lena wolf@corp.example", "without spaces"),
            ("lena.wolf@corp", "at least one dot"),
            ("lena..wolf@corp.example", "not two in a row"),
            ("<lena@corp.example>", "may hold letters"),
            ("lena@corp.example\r\nRCPT TO:<x@y.z>", "without spaces"),
            ("léna@corp.example", "only ASCII"),
            ("lena@-corp.example", "not first or last"),
            ("lena@", "at least one dot"),
            ("corp.example", "has no @"),
        ] as [(String, String?)])
    func addresses(text: String, refusal: String?) {
        do {
            let address = try MailAddress(text)
            #expect(refusal == nil, "\(text) was accepted")
            #expect(address.domain == address.domain.lowercased())
        } catch {
            #expect(refusal.map { error.description.contains($0) } == true, "\(text): \(error)")
        }
    }
}
