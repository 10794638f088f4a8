import Crypto
import Foundation
import ORAClient
import ORACore
import ORATestSupport
import Testing

/// The helpdesk's queue: the person at the machine sends an invitation (`ora-agent invite --helpdesk`), the helpers
/// whom policy allows see it at once (`ora invitations --watch`), the first to take it gets it, and opening it is
/// still the machine's decision and the person's consent. Real server replicas, agent, PostgreSQL and slapd.
@Suite("Invitations: the helpdesk's queue")
struct HelpdeskQueueTests {
    /// Sends an invitation from the machine of `setup` to the helpdesk.
    /// - Returns: its id and what `ora-agent invite` printed.
    static func send(
        _ setup: OfferSetup, password: String? = InvitationTests.password
    ) async throws -> (id: String, output: String) {
        let sent = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "invite", "--helpdesk", "--message", "Outlook keeps asking for my password", "--state-dir", setup.state,
            ] + (password == nil ? ["--no-password"] : ["--password-stdin"]),
            standardInput: password.map { $0 + "\n" })
        guard sent.status == 0 else { throw TestSetupError("ora-agent invite --helpdesk: \(sent.standardError)") }
        let line = try #require(sent.standardOutput.split(separator: "\n").first { $0.hasPrefix("Invitation ") })
        let short = String(line.split(separator: " ")[1])
        let listed = try await eventually(
            {
                try await setup.server.sql("SELECT id FROM invitation_queue WHERE id::text LIKE '\(short)%'")
            }, until: { !$0.isEmpty })
        return (listed, sent.standardOutput)
    }

    /// Starts `ora invitations --watch` as `helper` and waits until it watches.
    static func watch(_ helper: OperatorCLI) async throws -> ChildProcess {
        let watcher = try helper.start(["invitations", "--watch"])
        guard try await eventually({ watcher.standardOutputSoFar.contains("Watching the helpdesk's queue") }) else {
            throw TestSetupError("ora invitations --watch did not start: \(watcher.standardErrorSoFar)")
        }
        return watcher
    }

    @Test("two helpers watch; one takes it and opens it with the password, the other is told who took it")
    func takeFromTheQueue() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let server = setup.server
        let agent = try setup.startAgent()
        defer { agent.send(SIGTERM) }
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let hannah = try await OperatorCLI("hannah.fischer", server: server, ora: SourceTree.binary("ora"))
        let mia = try await OperatorCLI("mia.schulz", server: server, ora: SourceTree.binary("ora"))
        try await waitUntilOnline("ws-0101", server: server, token: try await server.token("lena.wolf"))

        // Nobody watches yet: the person is told so.
        let (first, alone) = try await Self.send(setup)
        #expect(alone.contains("Nobody who may help this machine is at the helpdesk right now"), "\(alone)")
        let lenaWatching = try await Self.watch(lena)
        let hannahWatching = try await Self.watch(hannah)
        let miaWatching = try await Self.watch(mia)
        defer { for watcher in [lenaWatching, hannahWatching, miaWatching] { watcher.send(SIGTERM) } }
        // What was there already is shown at once.
        #expect(try await eventually { lenaWatching.standardOutputSoFar.contains(first) })

        let (id, sent) = try await Self.send(setup)
        #expect(sent.contains("sent to the helpdesk"), "\(sent)")
        // Lena and Hannah may answer WS-0101 and watch; Mia may not, so she does not count and sees nothing.
        #expect(sent.contains("Helpers who may help this machine: 2 online now."), "\(sent)")
        for watcher in [lenaWatching, hannahWatching] {
            #expect(
                try await eventually {
                    watcher.standardOutputSoFar.split(separator: "\n").contains {
                        $0.hasPrefix(id) && $0.contains("WS-0101") && $0.contains("Outlook keeps asking")
                            && $0.contains("[open until")
                    }
                }, "\(watcher.standardOutputSoFar)")
        }
        let miaQueue = await mia.run("invitations")
        #expect(miaQueue.standardOutput.contains("The queue is empty"), "\(miaQueue.standardOutput)")
        #expect(!miaWatching.standardOutputSoFar.contains(id))
        let miaTakes = await mia.run("invitation", "take", id)
        #expect(miaTakes.status == 1)
        #expect(miaTakes.standardError.contains("that you may answer is in the helpdesk's queue"), "\(miaTakes)")

        // Lena takes it first, and opens it: the machine checks the password, the person says yes.
        let taken = await lena.run(
            ["invitation", "take", id, "--ticket", "INC0000001", "--password-stdin"],
            input: InvitationTests.password + "\n")
        #expect(taken.status == 0, "\(taken.standardError)")
        #expect(taken.standardOutput.contains("you took invitation \(id) from the queue"), "\(taken.standardOutput)")
        #expect(taken.standardOutput.contains("genuine invitation from WS-0101, signed by its enrolled key"))
        #expect(taken.standardOutput.contains("the password was accepted by WS-0101"), "\(taken.standardOutput)")
        let session = try #require(
            taken.standardOutput.split(separator: "\n").first { $0.hasPrefix("offered ") }.map {
                String($0.components(separatedBy: "session ").last ?? "")
            })
        _ = try await ORATestSupport.session(session, on: server, token: try await server.token("lena.wolf")) {
            $0.state == .viewing
        }

        // Hannah was second: she is told who was first, and sees it taken.
        let late = await hannah.run("invitation", "take", id)
        #expect(late.status == 2)
        #expect(late.standardError.contains("Lena Wolf took this invitation at"), "\(late.standardError)")
        #expect(
            try await eventually {
                hannahWatching.standardOutputSoFar.split(separator: "\n").contains {
                    $0.hasPrefix(id) && $0.contains("[taken by Lena Wolf at")
                }
            }, "\(hannahWatching.standardOutputSoFar)")
        // Nor can she open its file past the queue.
        let file = try await server.sql("SELECT invitation FROM invitation_queue WHERE id = '\(id)'")
        let past = try await HTTP.post(
            server.base + "/api/v1/invitations/open", json: #"{"invitation": \#(file)}"#,
            token: try await server.token("hannah.fischer"))
        #expect(past.status == 409 && past.refusal?.error == "invitation_taken", "\(past.body)")

        // Recorded: sent by the machine, claimed by Lena, then opened as any invitation.
        #expect(
            try await server.sql(
                "SELECT string_agg(event || '|' || actor_kind, ',' ORDER BY sequence) FROM audit_events WHERE details->>'invitation' = '\(id)' AND event LIKE 'invitation.%' AND event <> 'invitation.created'"
            ) == "invitation.sent|machine,invitation.claimed|operator,invitation.opened|operator,"
                + "invitation.taken|operator")

        // The person revokes the other one: it leaves the queue at once, and nobody can take it.
        let revoked = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: ["invitations", "revoke", String(first.prefix(8)), "--state-dir", setup.state])
        #expect(revoked.status == 0, "\(revoked.standardError)")
        #expect(
            try await eventually {
                lenaWatching.standardOutputSoFar.split(separator: "\n").contains {
                    $0.hasPrefix(first) && $0.contains("[revoked by the person]")
                }
            }, "\(lenaWatching.standardOutputSoFar)")
        let withdrawn = await hannah.run("invitation", "take", first)
        #expect(withdrawn.status == 2)
        #expect(withdrawn.standardError.contains("the person at the machine revoked the invitation"), "\(withdrawn)")
    }

    @Test("taken at the same moment through two replicas, each invitation goes to exactly one helper")
    func raceAcrossReplicas() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let back = setup.server
        let front = try await RunningServer(sharing: back, extra: OfferFixtures.configuration)
        let lenaToken = try await front.token("lena.wolf")
        let hannahToken = try await back.token("hannah.fischer")
        // A watcher on the replica the machine did not send to sees what it sent.
        let lena = try await OperatorCLI("lena.wolf", server: front, ora: SourceTree.binary("ora"))
        let watching = try await Self.watch(lena)
        defer { watching.send(SIGTERM) }

        var winners: [String] = []
        for _ in 0..<5 {
            let (id, _) = try await Self.send(setup, password: nil)
            #expect(try await eventually { watching.standardOutputSoFar.contains(id) }, "not seen on the other replica")
            async let fromFront = HTTP.post(front.base + "/api/v1/invitations/\(id)/take", token: lenaToken)
            async let fromBack = HTTP.post(back.base + "/api/v1/invitations/\(id)/take", token: hannahToken)
            let answers = try await [fromFront, fromBack]
            #expect(answers.map(\.status).sorted() == [200, 409], "\(answers.map(\.body))")
            let loser = try #require(answers.first { $0.status == 409 })
            #expect(loser.refusal?.error == "invitation_taken", "\(loser.body)")
            let winner = try #require(answers.first { $0.status == 200 })
            let takenBy = try #require(winner.json(Schemas.QueuedInvitation.self)?.takenBy)
            #expect(loser.refusal?.message.contains("\(takenBy) took this invitation at") == true, "\(loser.body)")
            winners.append(takenBy)
            #expect(
                try await back.sql(
                    "SELECT count(*) FROM audit_events WHERE event = 'invitation.claimed' AND details->>'invitation' = '\(id)'"
                ) == "1")
        }
        #expect(winners.count == 5)
    }

    @Test("an invitation not made for the helpdesk, an altered one, or one of another machine is refused")
    func refusedAtTheQueue() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let server = setup.server
        let (file, _) = try await InvitationTests.invite(setup)
        let content = try String(contentsOfFile: file, encoding: .utf8)
        let asFile = try await HTTP.post(server.base + "/agent/v1/invitations", json: content)
        #expect(asFile.status == 400 && asFile.refusal?.error == "wrong_channel", "\(asFile.body)")
        #expect(asFile.refusal?.message.contains("made to be saved as a file") == true, "\(asFile.body)")

        let (id, _) = try await Self.send(setup)
        let queued = try await server.sql("SELECT invitation FROM invitation_queue WHERE id = '\(id)'")
        let again = try await HTTP.post(server.base + "/agent/v1/invitations", json: queued)
        #expect(again.status == 200, "\(again.body)")
        let altered = try await HTTP.post(
            server.base + "/agent/v1/invitations", json: queued.replacingOccurrences(of: "Outlook", with: "Outlooc"))
        #expect(altered.status == 400 && altered.refusal?.error == "not_genuine", "\(altered.body)")
        let garbage = try await HTTP.post(server.base + "/agent/v1/invitations", json: #"{"hello": 1}"#)
        #expect(garbage.status == 400 && garbage.refusal?.error == "unreadable_invitation", "\(garbage.body)")
        #expect(try await server.sql("SELECT count(*) FROM invitation_queue") == "1")
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'invitation.sent'") == "1")

        // At most five waiting from one machine: the sixth is refused, and the person is told why.
        for _ in 0..<4 { _ = try await Self.send(setup, password: nil) }
        let sixth = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: ["invite", "--helpdesk", "--no-password", "--state-dir", setup.state])
        #expect(sixth.status == 2)
        #expect(
            sixth.standardError.contains("WS-0101 has 5 requests waiting in the helpdesk's queue already"),
            "\(sixth.standardError)")
        #expect(sixth.standardError.contains("the invitation was revoked on this machine"), "\(sixth.standardError)")
        // This server has no mail settings: an invitation to be e-mailed is refused, and the person told why.
        let unmailed = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: ["invite", "--email", "lena.wolf@corp.example", "--no-password", "--state-dir", setup.state])
        #expect(unmailed.status == 2)
        #expect(
            unmailed.standardError.contains("this server sends no e-mail (its configuration has no mail section)"),
            "\(unmailed.standardError)")

        // Taking what is not in the queue: an id that is no UUID, and one that is not there.
        let lena = try await server.token("lena.wolf")
        let notAnID = try await HTTP.post(server.base + "/api/v1/invitations/not-an-id/take", token: lena)
        #expect(
            notAnID.status == 400 && notAnID.refusal?.message == "the invitation id must be a UUID", "\(notAnID.body)")
        let unknown = try await HTTP.post(server.base + "/api/v1/invitations/\(UUID())/take", token: lena)
        #expect(unknown.status == 404 && unknown.refusal?.error == "unknown_invitation", "\(unknown.body)")

        // Who may help now, asked by the machine with its key: good for a minute, and for its own name only.
        let keyPEM = try String(contentsOfFile: setup.state + "/device-key.pem", encoding: .utf8)
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        func ask(_ machine: String, at time: Date, with signer: P256.Signing.PrivateKey) async throws -> HTTP.Answer {
            let question = try PresenceQuestion(machine: machine, at: time, signingWith: signer)
            let body = String(decoding: try JSONEncoder().encode(question), as: UTF8.self)
            return try await HTTP.post(server.base + "/agent/v1/presence", json: body)
        }
        let asked = try await ask("ws-0101", at: Date(), with: key)
        #expect(asked.status == 200 && asked.body.contains(#""online":0"#), "\(asked.body)")
        for refused in [
            try await ask("ws-0101", at: Date() - 300, with: key), try await ask("ws-0101", at: Date(), with: .init()),
            try await ask("ws-0999", at: Date(), with: key),
        ] {
            #expect(refused.status == 400 && refused.refusal?.error == "not_enrolled_key", "\(refused.body)")
        }

        // The server cannot be reached: the person is told, and the invitation is revoked on the machine.
        _ = await server.stop()
        let unreachable = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: ["invite", "--helpdesk", "--no-password", "--state-dir", setup.state])
        #expect(unreachable.status == 3)
        #expect(
            unreachable.standardError.contains("could not be sent to the helpdesk, so it was revoked on this machine"),
            "\(unreachable.standardError)")
        let listed = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"), arguments: ["invitations", "--state-dir", setup.state])
        #expect(listed.standardOutput.contains("helpdesk  revoked"), "\(listed.standardOutput)")
    }
}
