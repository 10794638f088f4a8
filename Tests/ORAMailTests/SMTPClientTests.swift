import Foundation
import Logging
import ORACore
import ORATestSupport
import Testing

@testable import ORAMail

/// Sending through a real SMTP server (aiosmtpd) on loopback, with STARTTLS.
@Suite struct SMTPClientTests {
    private let logger = Logger(label: "test")

    private func message(to: String = "lena.wolf@corp.example") throws -> MailMessage {
        MailMessage(
            from: try MailAddress("ora@corp.example"), fromName: "ora — Helpdesk", to: try MailAddress(to),
            subject: "Anna Schmidt asks for help on WS-0101 ✓", text: "Line one\n.\nLine three",
            attachments: [
                .init(
                    fileName: "WS-0101.orainvite", contentType: "application/vnd.ora.invitation+json",
                    content: Data("{\"format\":\"ora-invitation/1\"}".utf8))
            ],
            date: Date(), messageID: UUID().uuidString + "@corp.example")
    }

    private func settings(
        _ server: TestMailServer, host: String = "localhost", caFile: String? = nil
    ) throws
        -> SMTPSettings
    {
        SMTPSettings(
            host: host, port: server.port, caFile: caFile ?? server.caFile, from: try MailAddress("ora@corp.example"),
            timeout: .seconds(20))
    }

    @Test func aMessageArrivesOverTLSAsAMailProgramReadsIt() async throws {
        let server = try await TestMailServer()
        for host in ["localhost", "127.0.0.1"] {
            try await SMTPClient(settings: try settings(server, host: host), logger: logger).send(try message())
        }
        let messages = try await server.messages()
        try #require(messages.count == 2)
        let mail = messages[0]
        #expect(mail.to == "lena.wolf@corp.example")
        #expect(mail.from == "ora — Helpdesk <ora@corp.example>")
        #expect(mail.subject == "Anna Schmidt asks for help on WS-0101 ✓")
        #expect(mail.text == "Line one\n.\nLine three")
        #expect(mail.attachments.map(\.name) == ["WS-0101.orainvite"])
        #expect(mail.attachments.first?.type == "application/vnd.ora.invitation+json")
        #expect(mail.attachments.first?.content == Data("{\"format\":\"ora-invitation/1\"}".utf8))
        // aiosmtpd adds X-Peer; that the message came over TLS shows in that nothing was accepted without it.
        #expect(mail.headers.contains("Auto-Submitted"))
    }

    @Test func aServerWithoutSTARTTLSIsRefusedBeforeAnythingIsSent() async throws {
        let server = try await TestMailServer(plain: true)
        await #expect(throws: MailError.noStartTLS(host: "localhost")) {
            try await SMTPClient(settings: try settings(server), logger: logger).send(try message())
        }
        #expect(try await server.messages().isEmpty)
    }

    @Test func aCertificateFromAnotherCAIsRefused() async throws {
        let server = try await TestMailServer()
        let other = try await TestMailServer()
        let client = SMTPClient(settings: try settings(server, caFile: other.caFile), logger: logger)
        let mail = try message()
        do throws(MailError) {
            try await client.send(mail)
            Issue.record("a certificate that no trusted CA signed was accepted")
        } catch {
            guard case .tls = error else { throw error }
            #expect(error.description.hasPrefix("TLS with the mail server failed"))
        }
        #expect(try await server.messages().isEmpty)
    }

    @Test func aRecipientTheServerRefusesIsReportedWithItsReply() async throws {
        let server = try await TestMailServer(sizeLimit: 1_000_000)
        let oversized = String(repeating: "a", count: 64) + "@" + String(repeating: "b", count: 63) + ".example"
        // aiosmtpd accepts any recipient; a message above its size limit is refused with a reply instead.
        var big = try message(to: oversized)
        big.attachments = [
            .init(fileName: "big", contentType: "application/octet-stream", content: Data(count: 1_500_000))
        ]
        let client = SMTPClient(settings: try settings(server), logger: logger)
        do throws(MailError) {
            try await client.send(big)
            Issue.record("a message over the server's size limit was accepted")
        } catch {
            guard case .refused(let step, let code, _) = error else { throw error }
            #expect(step == "the message")
            #expect(code == 552)
        }
    }

    @Test func nothingListeningIsUnreachable() async throws {
        let port = try BlackHoleListener().port  // closed again at once: nothing listens there
        let settings = SMTPSettings(host: "127.0.0.1", port: port, from: try MailAddress("ora@corp.example"))
        let mail = try message()
        do throws(MailError) {
            try await SMTPClient(settings: settings, logger: logger).send(mail)
            Issue.record("sending to a closed port succeeded")
        } catch {
            guard case .unreachable(let host, let errorPort, _) = error else { throw error }
            #expect(host == "127.0.0.1" && errorPort == port)
        }
    }
}
