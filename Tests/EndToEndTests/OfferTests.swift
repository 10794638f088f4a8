import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ORAClient
import ORATestSupport
import OpenAPIRuntime
import Testing

/// The flow of an offer with the real binaries: `ora offer` as a helpdesk operator, the server deciding with
/// policy and the directory, `ora-agent run` asking the person at the machine through the `command` consent
/// provider, and every step in the audit log.
@Suite("Offers, consent and control")
struct OfferTests {
    @Test("offer, consent, control, policy revocation and a lost agent, each step audited with a signed receipt")
    func offerFlow() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let (server, admin, files, policies, state) = (
            setup.server, setup.admin, setup.files, setup.policies, setup.state
        )
        var agent = try setup.startAgent()
        let hannah = try await OperatorCLI("hannah.fischer", server: server, ora: SourceTree.binary("ora"))
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let lenaToken = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0101", server: server, token: lenaToken)
        let machines = await hannah.run("machines")
        #expect(
            machines.standardOutput.contains(
                #"ws-0101  online   view     allowed (view) by "tier1-view-workstations""#),
            "\(machines.standardOutput)")
        let lenasMachines = await lena.run("machines")
        #expect(
            lenasMachines.standardOutput.contains(
                #"ws-0101  online   control  allowed (control) with a ticket: a ticket is required by "tier2-control-workstations""#
            ), "\(lenasMachines.standardOutput)")

        // Tier 1 may not ask for control: denied with the explanation, and audited.
        let denied = await hannah.run("offer", "WS-0101", "--control", "--ticket", "INC0000001")
        #expect(denied.status == 2)
        #expect(denied.standardError.contains("denied"), "\(denied.standardError)")
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'offer.denied'") == "1")

        // Two offers at once: one session, the other is told the machine is busy.
        let hannahToken = try await server.token("hannah.fischer")
        let body = #"{"machine": "ws-0101", "mode": "view", "ticket": "INC0000001"}"#
        async let fromHannah = HTTP.post(server.base + "/api/v1/offers", json: body, token: hannahToken)
        async let fromLena = HTTP.post(server.base + "/api/v1/offers", json: body, token: lenaToken)
        let both = [try await fromHannah, try await fromLena]
        #expect(both.map(\.status).sorted() == [201, 409], "\(both.map(\.body))")
        let winner = try #require(both.first { $0.status == 201 })
        let loser = try #require(both.first { $0.status == 409 })
        #expect(loser.refusal?.error == "machine_busy")
        let winnerToken = both[0].status == 201 ? hannahToken : lenaToken
        let raced = try #require(winner.json(Schemas.Session.self)?.id)
        #expect(
            try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(raced)", token: winnerToken).status == 200)

        // Tier 1 views: the novice accepts.
        let viewed = await hannah.run("offer", "ws-0101", "--ticket", "INC0000001", "--reason", "printer", "--wait")
        #expect(viewed.status == 0, "\(viewed.standardError)")
        #expect(viewed.standardOutput.contains("accepted: you see the screen of ws-0101 (view only)"))
        let first = sessionID(in: viewed.standardOutput)
        let noControl = await hannah.run("session", "control", first)
        #expect(noControl.status == 2)
        #expect(
            noControl.standardError.contains(
                "this session was offered for viewing only; to request control, offer again with --control"),
            "\(noControl.standardError)")
        let busy = await lena.run("offer", "ws-0101", "--control", "--ticket", "INC0000001")
        #expect(busy.status == 2)
        #expect(busy.standardError.contains("ws-0101 is already in a session"))
        // A session is named by the start of its id too, as git names commits; its state as JSON for scripts.
        let shown = await hannah.run("session", "show", String(first.prefix(8)), "--json")
        #expect(shown.status == 0, "\(shown.standardError)")
        let shownSession = try JSONDecoder.oraAPI().decode(Schemas.Session.self, from: Data(shown.standardOutput.utf8))
        #expect(shownSession.id.lowercased() == first && shownSession.state == .viewing)
        let listed = await hannah.run("sessions", "--json")
        #expect(
            try JSONDecoder.oraAPI().decode([Schemas.Session].self, from: Data(listed.standardOutput.utf8)).map {
                $0.id.lowercased()
            }.contains(first))
        let unknownPrefix = await hannah.run("session", "show", "ffffffff")
        #expect(unknownPrefix.status == 1)
        #expect(unknownPrefix.standardError.contains("no session of yours starts with ffffffff"))
        let ended = await hannah.run("session", "end", String(first.prefix(6)))
        #expect(ended.standardOutput.contains("ended: the helper ended the session"), "\(ended.standardError)")
        #expect(
            try await auditEvents(of: first, on: server) == [
                "offer.requested", "offer.delivered", "consent.granted", "session.started", "session.ended",
            ])
        // The consent carries the machine's signed receipt.
        #expect(
            try await server.sql(
                "SELECT details->'receipt'->>'answer', details->'receipt'->>'question', length(details->'receipt'->>'signature') > 80 FROM audit_events WHERE event = 'consent.granted' AND session_id = '\(first)'"
            ) == "granted|session|t")

        // The novice declines.
        let declined = await lena.run("offer", "ws-0101", "--control", "--ticket", "INC0000002", "--wait")
        #expect(declined.status == 2)
        #expect(declined.standardOutput.contains("ended: the person at the machine declined the offer"))
        #expect(
            try await auditEvents(of: sessionID(in: declined.standardOutput), on: server) == [
                "offer.requested", "offer.delivered", "consent.declined", "session.ended",
            ])

        // Control: a second question, granted.
        let controlled = await lena.run("offer", "ws-0101", "--control", "--ticket", "INC0000001", "--wait")
        #expect(controlled.status == 0, "\(controlled.standardError)")
        let second = sessionID(in: controlled.standardOutput)
        let granted = await lena.run("session", "control", second, "--wait")
        #expect(granted.status == 0, "\(granted.standardError)")
        #expect(granted.standardOutput.contains("control granted"))
        let questions = try String(contentsOfFile: files.path + "/questions.log", encoding: .utf8)
        #expect(questions.contains(#""question":"control""#))
        #expect(questions.contains("Lena Wolf"), "the novice is told who offers")

        // A policy that no longer allows it ends it.
        let narrowed = try TemporaryDirectory()
        try narrowed.write(
            "test.yaml",
            OfferFixtures.policy.components(separatedBy: "  - name: tier1-view-workstations")[0]
                .replacingOccurrences(of: "Helpdesk Tier 2", with: "Helpdesk Tier 1") + "\n"
                + OfferFixtures.configuration.components(separatedBy: "agents:")[0])
        #expect(await admin.run("policy", "apply", narrowed.path, "--yes").status == 0)
        let revoked = try await session(second, on: server, token: lenaToken) { $0.state == .ended }
        #expect(revoked.endReason?.rawValue == "policy_revoked")
        #expect(
            try await auditEvents(of: second, on: server) == [
                "offer.requested", "offer.delivered", "consent.granted", "session.started", "control.requested",
                "control.granted", "session.ended",
            ])
        #expect(await admin.run("policy", "apply", policies.path, "--yes").status == 0)

        // No answer in time is a refusal.
        let unanswered = await lena.run("offer", "ws-0101", "--control", "--ticket", "INC0000003", "--wait")
        #expect(unanswered.status == 2)
        #expect(unanswered.standardOutput.contains("did not answer in time"), "\(unanswered.standardOutput)")
        #expect(
            try await auditEvents(of: sessionID(in: unanswered.standardOutput), on: server) == [
                "offer.requested", "offer.delivered", "consent.timeout", "session.ended",
            ])

        // The agent dies mid-session.
        let lost = await lena.run("offer", "ws-0101", "--control", "--ticket", "INC0000001", "--wait")
        #expect(lost.status == 0, "\(lost.standardError)")
        let third = sessionID(in: lost.standardOutput)
        agent.send(SIGKILL)
        _ = await agent.exit()
        // Its closed connection is noticed at once, not at the next ping (30 s).
        let gone = try await session(third, on: server, token: lenaToken, within: .seconds(5)) {
            $0.state == .ended
        }
        #expect(gone.endReason?.rawValue == "agent_disconnected")
        let offline = await lena.run("offer", "ws-0101", "--control", "--ticket", "INC0000001")
        #expect(offline.status == 2)
        #expect(offline.standardError.contains("ws-0101 is not connected"))

        // Revoked: the agent cannot come back.
        #expect(await admin.run("agents", "revoke", "ws-0101").status == 0)
        agent = try ChildProcess(
            SourceTree.binary("ora-agent"),
            arguments: ["run", "--consent", "command", "--consent-command", "/bin/false", "--state-dir", state])
        let refused = await agent.exit()
        #expect(refused.status == 2)
        #expect(
            refused.standardError.contains("this machine is not enrolled, or its enrollment was revoked"),
            "\(refused.standardError)")
        let auditor = try await server.token("sara.klein")
        let verified = try await HTTP.get(server.base + "/api/v1/audit/verify", token: auditor)
        #expect(verified.json(Schemas.AuditVerificationReport.self)?.intact == true, "\(verified.body)")
    }

    @Test(
        "with the terminal provider in tmux: the person answers at the keyboard, the pane stays current through chat, control and ESC, and E ends the session"
    )
    func terminalConsent() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0102")
        let (server, state) = (setup.server, setup.state)
        let terminal = try await Tmux.start(
            "\(SourceTree.binary("ora-agent")) run --consent terminal --state-dir \(state)")
        // The tmux server outlives this test's processes unless it is stopped, whatever happens.
        do {
            let lenaToken = try await server.token("lena.wolf")
            try await waitUntilOnline("ws-0102", server: server, token: lenaToken)

            let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
            let offered = await lena.run("offer", "ws-0102", "--control", "--ticket", "INC0000001", "--reason", "mail")
            #expect(offered.status == 0, "\(offered.standardError)")
            let id = sessionID(in: offered.standardOutput)
            let question = try await terminal.waitFor("Allow? [y/N]")
            #expect(question.contains("Lena Wolf (lena.wolf) from the helpdesk offers to help you"))
            #expect(question.contains("Ticket: INC0000001"))
            // Her title and department, as the directory has them, under her name.
            #expect(question.contains("Position: Senior Support Engineer (Tier 2), IT Service Desk"), "\(question)")
            try await terminal.type("y", "Enter")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }
            // The pane says who is there and what they can do, and nothing else.
            var pane = try await terminal.waitUntilShowing("Lena Wolf may see your screen (not looking now)")
            #expect(pane.contains("Helper: Lena Wolf (lena.wolf), since "), "\(pane)")
            #expect(pane.contains("Position: Senior Support Engineer (Tier 2), IT Service Desk"), "\(pane)")
            #expect(pane.contains("Ticket: INC0000001") && pane.contains("Reason: mail"), "\(pane)")
            #expect(pane.contains("E: end session · Enter: write to your helper"), "\(pane)")
            #expect(!pane.contains("stop control"), "\(pane)")
            let shown = try await session(id, on: server, token: lenaToken) { $0.person?.window == true }
            #expect(shown.person?.typing == false)

            // Chat both ways: the helper's line appears in the pane; the person's arrives at the helper's chat.
            let sent = await lena.run("session", "chat", id, "Please open Outlook <b>now</b>")
            #expect(sent.status == 0, "\(sent.standardError)")
            #expect(sent.standardOutput.contains("Lena Wolf: Please open Outlook <b>now</b>"), "\(sent.standardOutput)")
            _ = try await terminal.waitUntilShowing("Lena Wolf: Please open Outlook <b>now</b>")
            try await terminal.type("Enter")
            _ = try await terminal.waitUntilShowing("Message (Enter sends, Esc cancels):")
            try await terminal.type("It asks for my password")
            _ = try await session(id, on: server, token: lenaToken) { $0.person?.typing == true }
            try await terminal.type("Enter")
            pane = try await terminal.waitUntilShowing("You: It asks for my password")
            let transcript = try await HTTP.get(server.base + "/api/v1/sessions/\(id)/chat", token: lenaToken)
            let lines = try #require(transcript.json(Schemas.ChatTranscript.self)?.messages, "\(transcript.body)")
            #expect(lines.map(\.from.rawValue) == ["helper", "person"])
            #expect(lines.map(\.text) == ["Please open Outlook <b>now</b>", "It asks for my password"])
            #expect(lines.map(\.name) == ["Lena Wolf", "WS-0102"])
            _ = try await terminal.waitUntilShowing("E: end session")
            #expect(!(await terminal.visible()).contains("(sending…)"))

            #expect(await lena.run("session", "control", id).status == 0)
            _ = try await terminal.waitFor("asks to use your keyboard and mouse")
            try await terminal.type("y", "Enter")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .controlling }
            pane = try await terminal.waitUntilShowing("controls your keyboard and mouse")
            #expect(pane.contains("Esc or Ctrl+C: stop control"), "\(pane)")
            try await terminal.type("Escape")
            // Control stopped, the session goes on, and the pane no longer says the helper controls anything.
            let stopped = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }
            #expect(stopped.controlStoppedBy == .esc)
            #expect(
                try await server.sql(
                    "SELECT details->>'how' FROM audit_events WHERE event = 'control.stopped' AND session_id = '\(id)'")
                    == "esc")
            pane = try await terminal.waitUntilShowing("Lena Wolf may see your screen (not looking now)")
            #expect(!pane.contains("controls") && !pane.contains("stop control"), "\(pane)")
            try await terminal.type("e")
            let ended = try await session(id, on: server, token: lenaToken) { $0.state == .ended }
            #expect(ended.endReason?.rawValue == "novice_ended", "\(ended)")
            pane = try await terminal.waitUntilShowing("You ended the session at ")
            #expect(pane.contains("Nobody sees your screen now.") && !pane.contains("Lena Wolf may see"), "\(pane)")
            #expect(
                try await auditEvents(of: id, on: server) == [
                    "offer.requested", "offer.delivered", "consent.granted", "session.started", "chat.message",
                    "chat.message", "control.requested", "control.granted", "control.stopped", "session.ended",
                ])
            // The agent goes on, and the next offer is asked at the keyboard again.
            let again = await lena.run("offer", "ws-0102", "--ticket", "INC0000001")
            #expect(again.status == 0, "\(again.standardError)")
            _ = try await terminal.waitUntilShowing("Allow? [y/N]")
            try await terminal.type("n", "Enter")
            let declined = try await session(sessionID(in: again.standardOutput), on: server, token: lenaToken) {
                $0.state == .ended
            }
            #expect(declined.endReason?.rawValue == "declined", "\(declined)")
        } catch {
            await terminal.close()
            throw error
        }
        await terminal.close()
    }

    @Test(
        "a server restart ends its sessions as server_restart; the agent comes back by itself and can be offered again")
    func serverRestart() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0202")
        let agent = try setup.startAgent()
        let server = setup.server
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        try await waitUntilOnline("ws-0202", server: server, token: try await server.token("lena.wolf"))
        let before = await lena.run("offer", "ws-0202", "--ticket", "INC0000001", "--wait")
        #expect(before.status == 0, "\(before.standardError)")
        let id = sessionID(in: before.standardOutput)

        try await server.restart()
        #expect(
            try await server.sql(
                "SELECT details->>'reason' FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'")
                == "server_restart")
        // The agent reconnects with its back-off; nothing of the old session is left to block a new offer.
        let token = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0202", server: server, token: token)
        // The helper still sees how the session ended, and nothing is left running.
        let sessions = try await HTTP.get(server.base + "/api/v1/sessions", token: token)
        let listed = try sessions.decode([Schemas.Session].self)
        #expect(listed.map(\.endReason) == [.serverRestart], "\(sessions.body)")
        #expect(listed.first?.id.lowercased() == id.lowercased())
        let after = await lena.run("offer", "ws-0202", "--ticket", "INC0000001", "--wait")
        #expect(after.status == 0, "\(after.standardError)")
        #expect(after.standardOutput.contains("accepted"))
        #expect(agent.isRunning)
    }

    @Test("a session ends by itself at the policy's max_duration, recorded as such, and the agent is told")
    func maximumDuration() async throws {
        let setup = try await OfferSetup.make(
            enrolling: "WS-0201",
            policy: OfferFixtures.policy.replacingOccurrences(of: "max_duration: 1h", with: "max_duration: 60s"))
        let agent = try setup.startAgent("--log-level", "info")
        let server = setup.server
        let token = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0201", server: server, token: token)
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let offered = await lena.run("offer", "ws-0201", "--control", "--ticket", "INC0000001", "--wait")
        #expect(offered.status == 0, "\(offered.standardError)")
        let id = sessionID(in: offered.standardOutput)
        let started = try await session(id, on: server, token: token) { $0.state == .viewing }
        #expect(started.deadline != nil, "a viewing session shows when it runs out")
        // Sixty seconds after the offer, and a little more.
        let ended = try await session(id, on: server, token: token, within: .seconds(120)) {
            $0.state == .ended
        }
        #expect(ended.endReason?.rawValue == "max_duration", "\(ended)")
        #expect(
            try await server.sql(
                "SELECT actor_kind, details->>'reason' FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'"
            ) == "system|max_duration")
        agent.send(SIGTERM)
        let stopped = await agent.exit()
        let told = stopped.standardError.split(separator: "\n").filter {
            $0.lowercased().contains(id.lowercased()) && $0.contains("session ended")
        }
        #expect(told.count == 1 && told[0].contains("max_duration"), "\(stopped.standardError)")
    }

    @Test("a helper removed from the group that allowed the session loses it at the next check: membership_lost")
    func membershipLost() async throws {
        // No directory cache, so the check a minute later sees the change.
        let setup = try await OfferSetup.make(enrolling: "WS-0202", directoryExtra: "  cache: { ttl: 0s }")
        let agent = try setup.startAgent()
        let server = setup.server
        let token = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0202", server: server, token: token)
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let offered = await lena.run("offer", "ws-0202", "--control", "--ticket", "INC0000001", "--wait")
        #expect(offered.status == 0, "\(offered.standardError)")
        let id = sessionID(in: offered.standardOutput)

        // An administrator takes Lena out of Helpdesk Tier 2 in the directory.
        let change = try setup.files.write(
            "remove.ldif",
            """
            dn: cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example
            changetype: modify
            delete: member
            member: uid=lena.wolf,ou=People,dc=corp,dc=example

            """, permissions: 0o644)
        let modified = await ChildProcess.runAsync(
            "/usr/bin/ldapmodify",
            arguments: [
                "-x", "-H", server.directory.uri, "-D", "cn=admin,dc=corp,dc=example", "-y",
                server.directory.state.path + "/slapd/admin-password", "-f", change,
            ])
        #expect(modified.status == 0, "\(modified.standardError)")
        // The broker checks live sessions against the directory once a minute.
        let ended = try await session(id, on: server, token: token, within: .seconds(120)) {
            $0.state == .ended
        }
        #expect(ended.endReason?.rawValue == "membership_lost", "\(ended)")
        #expect(
            try await server.sql(
                "SELECT actor_kind, details->>'reason' FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'"
            ) == "system|membership_lost")
        #expect(agent.isRunning, "the agent goes on; only the session ended")
    }

    @Test("a machine is offered help a limited number of times a minute; the rest get 429 and are audited")
    func offerRateLimit() async throws {
        let setup = try await OfferSetup.make(
            enrolling: "WS-0101",
            configuration: OfferFixtures.configuration.replacingOccurrences(
                of: "offers_per_machine_per_minute: 30", with: "offers_per_machine_per_minute: 2"))
        let token = try await setup.server.token("lena.wolf")
        let body = #"{"machine": "ws-0101", "mode": "view", "ticket": "INC0000001"}"#
        var answers: [HTTP.Answer] = []
        let first = ContinuousClock.now
        for _ in 0..<3 {
            answers.append(try await HTTP.post(setup.server.base + "/api/v1/offers", json: body, token: token))
        }
        let waited = (ContinuousClock.now - first).components.seconds
        // No agent runs: the first two are counted and refused as offline, the third is not even tried.
        #expect(answers.map(\.status) == [409, 409, 429])
        #expect(
            answers.map { $0.refusal?.error } == ["machine_offline", "machine_offline", "too_many_offers"])
        // The next offer may come once the first has left the minute, and not before.
        let retryAfter = try #require(answers[2].retryAfter.flatMap { Int64($0) })
        #expect((60 - waited - 1)...60 ~= retryAfter, "Retry-After \(retryAfter) after \(waited) s")
        #expect(
            try await setup.server.sql(
                "SELECT string_agg(details->>'refused', ',' ORDER BY sequence) FROM audit_events WHERE event = 'offer.denied'"
            ) == "machine_offline,machine_offline,too_many_offers")
    }

    @Test("malformed offers and unknown sessions are refused with what was wrong, and nothing is offered")
    func offerRefusals() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0102")
        let token = try await setup.server.token("lena.wolf")
        let offers = setup.server.base + "/api/v1/offers"
        let cases: [(String, UInt, String)] = [
            (#"{"machine": "ws-0102", "mode": "admin"}"#, 400, "invalid_request"),
            (#"{"mode": "view"}"#, 400, "invalid_request"),
            (#"{"machine": "ws-0102", "reason": "line one\nline two"}"#, 400, "invalid_request"),
            // Text that would read differently from what it says, at the machine.
            (
                #"{"machine": "ws-0102", "ticket": "INC0000001", "reason": "update \u202Eexe.fdp"}"#, 400,
                "invalid_request"
            ),
            (#"{"machine": "ws-0102", "ticket": "INC\u200B0000001"}"#, 400, "invalid_request"),
            // One character to count, but 20,000 combining marks to store: bounded in bytes too.
            (
                #"{"machine": "ws-0102", "ticket": "INC0000001", "reason": "a\#(String(repeating: "\u{301}", count: 20_000))"}"#,
                400, "invalid_request"
            ),
            (#"{"machine": "ws-0102", "reason": "\#(String(repeating: "x", count: 201))"}"#, 400, "invalid_request"),
            (#"{"machine": "ws-0102", "ticket": "\#(String(repeating: "9", count: 101))"}"#, 400, "invalid_request"),
            (#"{"machine": "ws-9999", "ticket": "INC0000001"}"#, 404, "unknown_machine"),
            (#"{"machine": "ws-0102", "mode": "control"}"#, 403, "denied_by_policy"),
        ]
        for (body, status, code) in cases {
            let answer = try await HTTP.post(offers, json: body, token: token)
            #expect(answer.status == status, "\(body): \(answer.body)")
            #expect(answer.refusal?.error == code, "\(body): \(answer.body)")
        }
        #expect(try await HTTP.post(offers, json: #"{"machine": "ws-0102"}"#).status == 401)
        for path in ["/api/v1/sessions/not-a-uuid", "/api/v1/sessions/\(UUID().uuidString)"] {
            let answer = try await HTTP.get(setup.server.base + path, token: token)
            #expect(answer.status == 404, "\(path)")
            #expect(answer.refusal?.error == "unknown_session")
        }
        #expect(
            try await setup.server.sql("SELECT count(*) FROM audit_events WHERE event = 'offer.requested'") == "0")
    }

    @Test("an offer refused because the directory cannot be reached is answered 503 and still recorded as offer.denied")
    func directoryUnreachable() async throws {
        // A cache of one entry: the helper's groups stay known, the machine's do not.
        let setup = try await OfferSetup.make(enrolling: "WS-0101", directoryExtra: "  cache: { ttl: 600s, size: 1 }")
        let server = setup.server
        let second = await setup.admin.run("agents", "token", "create", "--machine", "WS-0102")
        let enrolled = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "enroll", "--server", server.base, "--token",
                second.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), "--machine", "WS-0102",
                "--state-dir", setup.files.path + "/second",
            ] + server.agentTrust)
        #expect(enrolled.status == 0, "\(enrolled.standardError)")
        let token = try await server.token("lena.wolf")
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: token).status == 200)
        try await server.directory.stop()
        let answer = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0101", "mode": "view", "ticket": "INC0000001"}"#,
            token: token)
        #expect(answer.status == 503, "\(answer.body)")
        #expect(answer.refusal?.error == "directory_unavailable")
        #expect(
            try await server.sql(
                """
                SELECT concat_ws('|', actor_id, machine, outcome, details->>'refused', details->>'mode')
                FROM audit_events WHERE event = 'offer.denied'
                """) == "uid=lena.wolf,ou=People,dc=corp,dc=example|ws-0101|failure|directory_unavailable|view")
        try await server.directory.start()
    }

    @Test("an operator follows at most 16 sessions' event streams at once; the 17th gets 429 until one ends")
    func eventStreamLimit() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let agent = try setup.startAgent()
        defer { agent.send(SIGTERM) }
        let server = setup.server
        let lena = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0101", server: server, token: lena)
        // Accepted: the session stays live (for an hour) until it is ended below.
        let offered = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0101", "mode": "view", "ticket": "INC0000001"}"#,
            token: lena)
        let id = try #require(offered.json(Schemas.Session.self)?.id, "\(offered.body)")
        // Read, not followed: every stream of hers counts against the limit measured here.
        var state: Schemas.SessionState?
        for _ in 0..<300 where state != .viewing {
            state = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: lena).json(Schemas.Session.self)?
                .state
            if state != .viewing { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(state == .viewing)
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = TestTLS.clientConfiguration
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        func follow(_ token: String) async throws -> HTTPClientResponse {
            var request = HTTPClientRequest(url: server.base + "/api/v1/sessions/\(id)/events")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            return try await client.execute(request, timeout: .seconds(30))
        }
        var open: [HTTPClientResponse] = []
        for _ in 0..<16 {
            let response = try await follow(lena)
            #expect(response.status.code == 200)
            open.append(response)
        }
        let refused = try await follow(lena)
        #expect(refused.status.code == 429)
        let body = String(buffer: try await refused.body.collect(upTo: 1 << 16))
        #expect(body.contains("too_many_streams"), "\(body)")
        #expect(refused.headers.first(name: "retry-after") == "5")
        // Others are not affected.
        #expect(try await follow(try await server.token("peter.schmidt")).status.code == 200)
        // The session ends: its streams end, and their slots are free again.
        #expect(try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: lena).status == 200)
        for response in open { _ = try await response.body.collect(upTo: 1 << 20) }
        open.removeAll()
        var again: UInt = 0
        for _ in 0..<50 {
            again = UInt(try await follow(lena).status.code)
            if again == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(again == 200)
        try await client.shutdown()
    }
}

/// A program running in its own tmux server, as if at a terminal: what it shows is read with capture-pane, keys are
/// typed with send-keys.
struct Tmux: Sendable {
    let socket = "ora-test-\(UUID().uuidString.prefix(8))"

    /// Starts `command` in a new tmux server.
    static func start(_ command: String) async throws -> Tmux {
        let tmux = Tmux()
        // The tmux server stays in the background; it must not keep the descriptor by which Foundation learns
        // that the process it started has ended, so every descriptor above 2 is closed before tmux starts (all of
        // them, as /proc lists them: after many tests that descriptor's number can be well above 1023). The test
        // process blocks signals its children would inherit; unblocked, the agent ends on kill-server's SIGHUP.
        let started = await ChildProcess.runAsync(
            "/usr/bin/perl",
            arguments: [
                "-MPOSIX", "-e",
                "sigprocmask(SIG_SETMASK, POSIX::SigSet->new); opendir(my $fds, '/proc/self/fd') or die qq($!); "
                    + "my @open = grep { /^[0-9]+$/ && $_ > 2 } readdir($fds); closedir($fds); "
                    + "POSIX::close($_) for @open; exec @ARGV or die qq(exec: $!)",
                "--",
                "/usr/bin/tmux", "-L", tmux.socket, "new-session", "-d", "-s", "agent", "-x", "200", "-y", "50",
                command,
            ])
        guard started.status == 0 else { throw TestSetupError("tmux did not start: \(started.standardError)") }
        return tmux
    }

    /// Types `keys` (tmux key names such as `Enter` and `Escape`, or text).
    func type(_ keys: String...) async throws {
        let result = await run(["send-keys", "-t", "agent"] + keys)
        guard result.status == 0 else { throw TestSetupError("tmux send-keys failed: \(result.standardError)") }
    }

    /// What the terminal shows now.
    func screen() async -> String {
        await run(["capture-pane", "-p", "-t", "agent", "-S", "-200"]).standardOutput
    }

    /// What the terminal shows on its screen now, without what scrolled away.
    func visible() async -> String {
        await run(["capture-pane", "-p", "-t", "agent"]).standardOutput
    }

    /// Waits (boundedly) until the terminal's screen — not what scrolled away — shows `text`, and returns it.
    func waitUntilShowing(_ text: String) async throws -> String {
        try await wait(for: text, in: visible)
    }

    /// Waits (boundedly) until the terminal shows `text`, also in what scrolled away, and returns the screen.
    func waitFor(_ text: String) async throws -> String {
        try await wait(for: text, in: screen)
    }

    private func wait(for text: String, in read: () async -> String) async throws -> String {
        for _ in 0..<200 {
            let shown = await read()
            if shown.contains(text) { return shown }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSetupError("the terminal never showed '\(text)'; it shows:\n\(await read())")
    }

    /// Stops the tmux server and the program in it.
    func close() async {
        _ = await run(["kill-server"])
    }

    private func run(_ arguments: [String]) async -> ChildProcess.Result {
        await ChildProcess.runAsync("/usr/bin/tmux", arguments: ["-L", socket] + arguments)
    }
}
