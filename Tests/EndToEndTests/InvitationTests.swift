import Crypto
import Foundation
import ORAClient
import ORACore
import ORATestSupport
import Testing

/// Invitations as the person at the machine makes them (`ora-agent invite`) and a helper opens them (`ora invitation
/// open`), with the real agent deciding: the server, PostgreSQL and slapd are real, the person's answers a script.
@Suite("Invitations: asking for help with a file")
struct InvitationTests {
    static let password = "correct horse battery"

    /// Makes an invitation on the machine of `setup`, saved in its files as `name`.
    static func invite(
        _ setup: OfferSetup, name: String = "help.orainvite", password: String? = Self.password,
        message: String = "Outlook keeps asking for my password", extra: [String] = []
    ) async throws -> (file: String, id: String) {
        let file = setup.files.path + "/" + name
        let made = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "invite", "--save", file, "--message", message, "--state-dir",
                setup.state,
            ]
                + (password == nil ? ["--no-password"] : ["--password-stdin"]) + extra,
            standardInput: password.map { $0 + "\n" })
        guard made.status == 0 else { throw TestSetupError("ora-agent invite: \(made.standardError)") }
        let content = try #require(FileManager.default.contents(atPath: file))
        let id = try SignedInvitation(fileContent: content).invitation.id.uuidString.lowercased()
        return (file, id)
    }

    static func open(
        _ file: String, as helper: OperatorCLI, password: String, extra: [String] = []
    ) async -> ChildProcess.Result {
        await helper.run(
            ["invitation", "open", file, "--ticket", "INC0000001", "--password-stdin"] + extra, input: password + "\n")
    }

    @Test("the right password, proved to the machine, opens one session after the person says yes; never twice")
    func fileInvitation() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let server = setup.server
        let agent = try setup.startAgent()
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        try await waitUntilOnline("ws-0101", server: server, token: try await server.token("lena.wolf"))
        let (file, id) = try await Self.invite(setup)
        // The machine reports the new invitation; the server records it, the machine as the actor.
        #expect(
            try await eventually {
                try await server.sql(
                    "SELECT actor_kind || '|' || (details->>'invitation') || '|' || (details->>'message') FROM audit_events WHERE event = 'invitation.created'"
                ) == "machine|\(id)|Outlook keeps asking for my password"
            })

        let opened = await Self.open(file, as: lena, password: Self.password)
        #expect(opened.status == 0, "\(opened.standardError)")
        #expect(opened.standardOutput.contains("genuine invitation from WS-0101, signed by its enrolled key"))
        #expect(
            opened.standardOutput.contains(#"(\#(NSUserName())): "Outlook keeps asking for my password""#),
            "\(opened.standardOutput)")
        #expect(opened.standardOutput.contains("the password was accepted by WS-0101"), "\(opened.standardOutput)")
        let session = try #require(
            opened.standardOutput.split(separator: "\n").first { $0.hasPrefix("offered ") }.map {
                String($0.components(separatedBy: "session ").last ?? "")
            })
        let lenaToken = try await server.token("lena.wolf")
        _ = try await ORATestSupport.session(session, on: server, token: lenaToken) { $0.state == .viewing }
        // Counted by event, with no label naming the invitation or the machine.
        let metrics = try await MetricsScrape(server)
        #expect(metrics["ora_invitation_events_total{event=\"created\"}"] == 1)
        #expect(metrics["ora_invitation_events_total{event=\"opened\"}"] == 1)
        #expect(metrics["ora_invitation_events_total{event=\"taken\"}"] == 1)
        #expect(!metrics.text.lowercased().contains(id.lowercased()))
        // The person was asked, and told that this answers their request.
        let questions = try String(contentsOfFile: setup.files.path + "/questions.log", encoding: .utf8)
        #expect(questions.contains("answers your request for help"), "\(questions)")
        #expect(questions.lowercased().contains(#""invitation":"\#(id)""#), "\(questions)")
        #expect(
            try await auditEvents(of: session, on: server) == [
                "invitation.opened", "invitation.taken", "offer.requested", "offer.delivered", "consent.granted",
                "session.started",
            ])
        // The machine's decision is signed and kept; the offer names the invitation.
        #expect(
            try await server.sql(
                "SELECT details->'decision'->>'outcome', length(details->'decision'->>'signature') > 80, details->>'invitation' FROM audit_events WHERE event = 'invitation.taken'"
            ) == "accepted|t|\(id)")
        #expect(
            try await server.sql("SELECT details->>'invitation' FROM audit_events WHERE event = 'offer.requested'")
                == id)

        // Used once: opening it again is refused by the machine.
        _ = await lena.run("session", "end", session)
        let again = await Self.open(file, as: lena, password: Self.password)
        #expect(again.status == 2)
        #expect(again.standardError.contains("the invitation was used already"), "\(again.standardError)")
        let listed = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"), arguments: ["invitations", "--state-dir", setup.state])
        #expect(listed.standardOutput.contains("used by uid=lena.wolf,ou=People,dc=corp,dc=example"), "\(listed)")

        // The password is nowhere on the server's side: not in the database, not in the log.
        #expect(
            try await server.sql("SELECT count(*) FROM audit_events WHERE details::text LIKE '%correct horse%'") == "0")
        agent.send(SIGTERM)
        let stopped = await server.stop()
        #expect(!(stopped.standardOutput + stopped.standardError).contains("correct horse"))
    }

    @Test("five wrong passwords lock it; revoked offline, altered, another machine's, or a helper policy refuses")
    func refusals() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let server = setup.server
        var agent = try setup.startAgent()
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let lenaToken = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0101", server: server, token: lenaToken)
        let (file, _) = try await Self.invite(setup)

        for attempt in 1...5 {
            let wrong = await Self.open(file, as: lena, password: "not the password \(attempt)")
            #expect(wrong.status == 2)
            if attempt < 5 {
                #expect(
                    wrong.standardError.contains("wrong password; \(5 - attempt) tr"),
                    "\(attempt): \(wrong.standardError)")
            } else {
                #expect(wrong.standardError.contains("locked after too many wrong passwords"), "\(wrong.standardError)")
            }
        }
        let right = await Self.open(file, as: lena, password: Self.password)
        #expect(right.status == 2)
        #expect(right.standardError.contains("locked after too many wrong passwords"), "\(right.standardError)")
        #expect(
            try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'invitation.password_failed'") == "4")
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'invitation.locked'") == "1")

        // A proof for a session nobody is opening, and files or settings that are not an invitation's.
        let unasked = try await HTTP.post(
            server.base + "/api/v1/invitations/proof",
            json:
                #"{"session": "\#(UUID())", "machine": "ws-0101", "proof": {"ephemeral_key": "AA==", "box": "AA=="}}"#,
            token: lenaToken)
        #expect(unasked.status == 404 && unasked.refusal?.error == "no_invitation_pending", "\(unasked.body)")
        let notAnInvitation = try setup.files.write("notes.orainvite", "{\"hello\": 1}\n")
        let unreadable = await Self.open(notAnInvitation, as: lena, password: Self.password)
        #expect(unreadable.status == 2)
        #expect(unreadable.standardError.contains("this is not an invitation"), "\(unreadable.standardError)")
        let tooLong = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "invite", "--save", setup.files.path + "/x.orainvite", "--expires", "8d", "--state-dir", setup.state,
            ])
        #expect(tooLong.status != 0)
        #expect(tooLong.standardError.contains("--expires takes a time between 1m and 7d"), "\(tooLong.standardError)")
        let shortPassword = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "invite", "--save", setup.files.path + "/x.orainvite", "--password-stdin", "--state-dir", setup.state,
            ],
            standardInput: "short\n")
        #expect(shortPassword.status == 2)
        #expect(
            shortPassword.standardError.contains("the password is too short: at least 8 characters"),
            "\(shortPassword.standardError)")
        #expect(!FileManager.default.fileExists(atPath: setup.files.path + "/x.orainvite"))

        // Revoked while the agent is away: the machine refuses it when it is back.
        let (second, secondID) = try await Self.invite(setup, name: "second.orainvite")
        agent.send(SIGTERM)
        _ = await agent.exit(within: .seconds(10))
        let revoked = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: ["invitations", "revoke", String(secondID.prefix(8)), "--state-dir", setup.state])
        #expect(revoked.status == 0, "\(revoked.standardError)")
        agent = try setup.startAgent()
        try await waitUntilOnline("ws-0101", server: server, token: lenaToken)
        #expect(
            try await eventually {
                try await server.sql(
                    "SELECT count(*) FROM audit_events WHERE event = 'invitation.revoked' AND details->>'invitation' = '\(secondID)'"
                ) == "1"
            }, "the revocation made while the agent was away was not reported when it came back")
        let afterRevoke = await Self.open(second, as: lena, password: Self.password)
        #expect(
            afterRevoke.standardError.contains("the person at the machine revoked the invitation"),
            "\(afterRevoke.standardError)")

        // Any byte changed: not genuine, at the helper's tool and at the server.
        let (third, _) = try await Self.invite(setup, name: "third.orainvite")
        let original = try String(contentsOfFile: third, encoding: .utf8)
        let altered = original.replacingOccurrences(of: "Outlook", with: "Outlooc")
        try altered.write(toFile: third, atomically: true, encoding: .utf8)
        let refusedHere = await Self.open(third, as: lena, password: Self.password)
        #expect(refusedHere.status == 2)
        #expect(refusedHere.standardError.contains("not genuine"), "\(refusedHere.standardError)")
        let atServer = try await HTTP.post(
            server.base + "/api/v1/invitations/open", json: #"{"invitation": \#(altered)}"#, token: lenaToken)
        #expect(atServer.status == 400 && atServer.refusal?.error == "not_genuine", "\(atServer.body)")

        // Signed with WS-0101's key but naming WS-0102: not that machine's enrolled key.
        try await setup.enroll(["WS-0102"])
        let keyPEM = try String(contentsOfFile: setup.state + "/device-key.pem", encoding: .utf8)
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        var borrowed = try SignedInvitation(fileContent: Data(original.utf8)).invitation
        borrowed.machine = "ws-0102"
        let forged = String(decoding: try SignedInvitation(borrowed, signingWith: key).fileContent, as: UTF8.self)
        let otherMachine = try await HTTP.post(
            server.base + "/api/v1/invitations/open", json: #"{"invitation": \#(forged)}"#, token: lenaToken)
        #expect(otherMachine.status == 400 && otherMachine.refusal?.error == "not_enrolled_key", "\(otherMachine.body)")

        // Someone policy does not let help on this machine is refused before the machine is asked, and recorded.
        let (fourth, _) = try await Self.invite(setup, name: "fourth.orainvite")
        let mia = try await OperatorCLI("mia.schulz", server: server, ora: SourceTree.binary("ora"))
        let notAllowed = await Self.open(fourth, as: mia, password: Self.password)
        #expect(notAllowed.status == 2)
        #expect(notAllowed.standardError.contains("no policy"), "\(notAllowed.standardError)")
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'invitation.opened' AND outcome = 'denied'") == "1")
        let stillOpen = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"), arguments: ["invitations", "--state-dir", setup.state])
        #expect(stillOpen.standardOutput.contains("open until"), "\(stillOpen.standardOutput)")
        agent.send(SIGTERM)
    }

    @Test("opened through another server replica than the one the machine's agent is connected to")
    func throughAnotherReplica() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let front = try await RunningServer(sharing: setup.server, extra: OfferFixtures.configuration)
        let agent = try setup.startAgent()
        let token = try await front.token("lena.wolf")
        try await waitUntilOnline("ws-0101", server: front, token: token)
        let lena = try await OperatorCLI("lena.wolf", server: front, ora: SourceTree.binary("ora"))
        let (file, _) = try await Self.invite(setup)

        let wrong = await Self.open(file, as: lena, password: "not the password")
        #expect(wrong.standardError.contains("wrong password; 4 tries left"), "\(wrong.standardError)")
        let opened = await Self.open(file, as: lena, password: Self.password)
        #expect(opened.status == 0, "\(opened.standardError)")
        let session = try #require(
            opened.standardOutput.split(separator: "\n").first { $0.hasPrefix("offered ") }.map {
                String($0.components(separatedBy: "session ").last ?? "")
            })
        _ = try await ORATestSupport.session(session, on: front, token: token) { $0.state == .viewing }
        agent.send(SIGTERM)
    }
}
