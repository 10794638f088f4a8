import Foundation
import ORACore
import ORATestSupport
import Testing

/// Invitations by e-mail: the person at the machine names an address (`ora-agent invite --email`), the server sends
/// the file and a link to the console through a real SMTP server (aiosmtpd, STARTTLS with a verified certificate),
/// and the file from the mail opens the session like any other. Real server, agent, PostgreSQL and slapd.
@Suite("Invitations: by e-mail")
struct InvitationMailTests {
    /// The test policy, with partners' addresses allowed for the workstations and invitations answered for at most
    /// a day.
    static let policy = """
        policies:
          - name: tier2-control-workstations
            helpers: { groups: ["cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"] }
            targets: { ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"] }
            allow: control
            require: { ticket: '^INC[0-9]{7}$' }
            consent_timeout: 10s
            invitations: { email_domains: [partner.example], max_lifetime: 1d }
          - name: tier1-view-workstations
            helpers: { groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"] }
            targets: { ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"] }
            allow: view
            consent_timeout: 10s
            invitations: { max_lifetime: 8h }
        """

    static func invite(_ setup: OfferSetup, to address: String, extra: [String] = []) async -> ChildProcess.Result {
        await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "invite", "--email", address, "--message", "Outlook keeps asking for my password", "--state-dir",
                setup.state, "--password-stdin",
            ] + extra,
            standardInput: InvitationTests.password + "\n")
    }

    @Test("the mail carries the file and a link; the file opens the session; refusals are reported and recorded")
    func mail() async throws {
        let mailServer = try await TestMailServer()
        let setup = try await OfferSetup.make(
            enrolling: "WS-0101",
            configuration: OfferFixtures.configuration + mailServer.configuration
                + "\n  from_name: ora Helpdesk\n  console_url: https://ora.corp.example/", policy: Self.policy)
        let server = setup.server
        let agent = try setup.startAgent()
        defer { agent.send(SIGTERM) }
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        try await waitUntilOnline("ws-0101", server: server, token: try await server.token("lena.wolf"))

        // To a colleague in the directory.
        let sent = await Self.invite(setup, to: "Lena.Wolf@CORP.example")
        #expect(sent.status == 0, "\(sent.standardError)")
        #expect(sent.standardOutput.contains("sent by e-mail to Lena.Wolf@corp.example"), "\(sent.standardOutput)")
        let messages = try await eventually({ try await mailServer.messages() }, until: { $0.count == 1 })
        let mail = try #require(messages.first)
        #expect(mail.to == "Lena.Wolf@corp.example")
        #expect(mail.from == "ora Helpdesk <ora@corp.example>")
        #expect(mail.subject.hasSuffix("asks for remote assistance on WS-0101"), "\(mail.subject)")
        let text = try #require(mail.text)
        #expect(text.contains("Their message: Outlook keeps asking for my password"), "\(text)")
        #expect(text.contains("It is protected by a password, which is not in this mail"), "\(text)")
        let attachment = try #require(mail.attachments.first)
        #expect(attachment.name?.hasPrefix("WS-0101-") == true && attachment.name?.hasSuffix(".orainvite") == true)
        let signed = try SignedInvitation(fileContent: attachment.content)
        #expect(signed.invitation.channel == .email && signed.invitation.recipient == "Lena.Wolf@corp.example")
        // The link opens the same file in the console: it travels in the fragment, which no server sees.
        let link = try #require(
            text.split(separator: "\n").first { $0.hasPrefix("https://ora.corp.example/invitations/open#") })
        let fragment = String(link.split(separator: "#")[1])
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let padded = fragment + String(repeating: "=", count: (4 - fragment.count % 4) % 4)
        let linked = try SignedInvitation(fileContent: try #require(Data(base64Encoded: padded)))
        #expect(linked == signed)
        #expect(link.count < 1_500, "\(link.count)")
        // The password is nowhere in the mail.
        #expect(!text.contains(InvitationTests.password))
        #expect(!String(decoding: attachment.content, as: UTF8.self).contains(InvitationTests.password))

        // The file from the mail opens the session: the machine checks the password, the person says yes.
        let file = try setup.files.write("from-mail.orainvite", String(decoding: attachment.content, as: UTF8.self))
        let opened = await InvitationTests.open(file, as: lena, password: InvitationTests.password)
        #expect(opened.status == 0, "\(opened.standardError)")
        #expect(opened.standardOutput.contains("the password was accepted by WS-0101"), "\(opened.standardOutput)")

        // To a partner's domain that policy allows.
        let partner = await Self.invite(setup, to: "support@partner.example")
        #expect(partner.status == 0, "\(partner.standardError)")

        // To anyone else: refused, revoked on the machine, and recorded.
        let stranger = await Self.invite(setup, to: "mallory@evil.example")
        #expect(stranger.status != 0)
        #expect(
            stranger.standardError.contains(
                "mallory@evil.example is not the address of anyone in the directory, nor in a domain that policy "
                    + "allows for this machine (partner.example)"), "\(stranger.standardError)")
        #expect(stranger.standardError.contains("the invitation was revoked on this machine"))

        // Longer than policy answers: refused before anything is sent.
        let tooLong = await Self.invite(setup, to: "lena.wolf@corp.example", extra: ["--expires", "3d"])
        #expect(tooLong.status != 0)
        #expect(
            tooLong.standardError.contains("policy lets invitations from WS-0101 be valid for at most 1d"),
            "\(tooLong.standardError)")

        // The mail server is down: the person is told, the invitation is revoked, and it is recorded.
        await mailServer.stop()
        let down = await Self.invite(setup, to: "lena.wolf@corp.example")
        #expect(down.status != 0)
        #expect(
            down.standardError.contains("the invitation was not sent: the mail server localhost:"),
            "\(down.standardError)")
        let listed = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"), arguments: ["invitations", "--state-dir", setup.state])
        #expect(listed.standardOutput.components(separatedBy: "revoked").count - 1 == 3, "\(listed.standardOutput)")

        // Refusals reach the audit log through its journal: waited for.
        let expected = [
            "success|Lena.Wolf@corp.example|", "success|support@partner.example|",
            "denied|mallory@evil.example|recipient_not_allowed",
            "denied|lena.wolf@corp.example|invitation_not_allowed",
            "failure|lena.wolf@corp.example|mail_not_sent",
        ].joined(separator: ",")
        let recorded = try await eventually(
            {
                try await server.sql(
                    "SELECT string_agg(outcome || '|' || (details->>'recipient') || '|' || coalesce(details->>'refused', ''), ',' ORDER BY sequence) FROM audit_events WHERE event = 'invitation.sent'"
                )
            }, until: { $0 == expected })
        #expect(recorded == expected)
        // The password reached neither the log, the database nor the mail.
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE details::text LIKE '%\(InvitationTests.password)%'") == "0")
        let log = server.process.standardOutputSoFar + server.process.standardErrorSoFar
        #expect(!log.contains(InvitationTests.password))
        #expect(log.contains("an invitation could not be sent by e-mail"))
    }
}
