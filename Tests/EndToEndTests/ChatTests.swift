import Foundation
import ORAClient
import ORATestSupport
import Testing

/// The helper's side of chat, against a real server and agent: when chat is open, who may write, how fast, what
/// is refused, and what the audit log keeps. The person's side is tested in their window and pane
/// (`DesktopConsentTests`, `OfferTests.terminalConsent`).
@Suite("Chat between the helper and the person at the machine")
struct ChatTests {
    func chat(_ id: String, _ text: String, on server: RunningServer, token: String) async throws -> HTTP.Answer {
        let body = String(decoding: try JSONEncoder().encode(["text": text]), as: UTF8.self)
        return try await HTTP.post(server.base + "/api/v1/sessions/\(id)/chat", json: body, token: token)
    }

    /// A server with `machine` enrolled, its agent answering as `OfferFixtures.consentScript` does, and Lena Wolf's
    /// token once the machine is online.
    func online(
        _ machine: String, auditExtra: String = ""
    ) async throws -> (setup: OfferSetup, agent: ChildProcess, token: String) {
        let setup = try await OfferSetup.make(enrolling: machine, auditExtra: auditExtra)
        let agent = try setup.startAgent()
        let lena = try await setup.server.token("lena.wolf")
        try await waitUntilOnline(machine.lowercased(), server: setup.server, token: lena)
        return (setup, agent, lena)
    }

    /// Offers help to `machine` about a ticket the script accepts, and waits until the person accepted.
    func accepted(_ machine: String, on server: RunningServer, token: String) async throws -> String {
        let offered = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "\#(machine)", "ticket": "INC0000001"}"#, token: token)
        let id = try #require(offered.json(Schemas.Session.self)?.id, "\(offered.body)")
        _ = try await session(id, on: server, token: token) { $0.state == .viewing }
        return id
    }

    @Test(
        "chat opens with the person's acceptance and ends with the session; only the helper writes; the rate is bounded"
    )
    func openRightsAndRate() async throws {
        let (setup, agent, lena) = try await online("WS-0101")
        let server = setup.server
        defer { agent.send(SIGKILL) }

        // Nobody answers this one (its ticket ends in 3): chat is not open yet.
        let waiting = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0101", "ticket": "INC0000003"}"#, token: lena)
        let unanswered = try #require(waiting.json(Schemas.Session.self)?.id, "\(waiting.body)")
        let early = try await chat(unanswered, "Hello?", on: server, token: lena)
        #expect(early.status == 409)
        #expect(early.refusal?.error == "chat_not_open")
        #expect(
            early.refusal?.message.hasPrefix("chat opens when the person at the machine accepts; the session is ")
                == true, "\(early.body)")
        // Ended by the helper, or by its consent timeout on a slow machine: either way it ends.
        _ = try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(unanswered)", token: lena)
        _ = try await session(unanswered, on: server, token: lena) { $0.state == .ended }

        let id = try await accepted("ws-0101", on: server, token: lena)
        async let followed = chatLines(
            of: id, on: server, token: lena, count: TestLimits.chatLinesPerWindow)
        try await Task.sleep(for: .milliseconds(300))

        // An administrator may see the session, but not write in it; another helper does not see it at all.
        let admin = try await server.token("peter.schmidt")
        let notTheirs = try await chat(id, "I am watching", on: server, token: admin)
        #expect(notTheirs.status == 403)
        #expect(notTheirs.refusal?.message == "only the helper of this session may chat with the person at the machine")
        let tom = try await server.token("tom.berger")
        #expect(try await chat(id, "Hi", on: server, token: tom).status == 404)

        // Lines as fast as they go: at least the window's share is taken (more when the machine is so slow that
        // the first leave the window meanwhile), then one is refused.
        var accepted = 0
        var refused: HTTP.Answer?
        for number in 1...(3 * TestLimits.chatLinesPerWindow) {
            let sent = try await chat(id, "line \(number)", on: server, token: lena)
            guard sent.status == 201 else {
                refused = sent
                break
            }
            accepted += 1
            #expect(sent.json(Schemas.ChatMessage.self)?.sequence == number)
        }
        #expect(accepted >= TestLimits.chatLinesPerWindow)
        let flooded = try #require(refused, "\(accepted) lines, none refused")
        #expect(flooded.status == 429)
        #expect(flooded.refusal?.error == "too_many_chat_messages")
        #expect(flooded.refusal?.message == "at most 30 chat messages in 20 seconds; wait a moment")
        #expect(Int(flooded.retryAfter ?? "") ?? 0 >= 1, "\(flooded.headers)")

        // Each line reached the event stream once, in order, and the audit log has each, as typed.
        let lines = try await followed
        #expect(lines.map(\.sequence) == Array(1...TestLimits.chatLinesPerWindow))
        #expect(lines.map(\.text) == (1...TestLimits.chatLinesPerWindow).map { "line \($0)" })
        #expect(lines.allSatisfy { $0.from == .helper && $0.name == "Lena Wolf" })
        #expect(
            try await server.sql(
                "SELECT count(*), min(details->>'text'), bool_and(details->>'digest' IS NULL), "
                    + "bool_and(actor_id = 'uid=lena.wolf,ou=People,dc=corp,dc=example') "
                    + "FROM audit_events WHERE event = 'chat.message' AND session_id = '\(id)'")
                == "\(accepted)|line 1|t|t")

        // The transcript in `ora audit session`, after the timeline.
        let sara = try await OperatorCLI("sara.klein", server: server, ora: SourceTree.binary("ora"))
        let story = await sara.run("audit", "session", id)
        #expect(story.status == 0, "\(story.standardError)")
        #expect(story.standardOutput.contains("chat transcript (\(accepted) lines):"), "\(story.standardOutput)")
        #expect(story.standardOutput.contains("Z Lena Wolf: line 1\n"), "\(story.standardOutput)")

        #expect(try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: lena).status == 200)
        let late = try await chat(id, "Are you still there?", on: server, token: lena)
        #expect(late.status == 409)
        #expect(late.refusal?.message == "the session has ended; chat ended with it")
    }

    @Test("with audit.chat: digest the log keeps only each line's digest; the line itself is still delivered")
    func digestOnly() async throws {
        let (setup, agent, lena) = try await online("WS-0102", auditExtra: "  chat: digest")
        let server = setup.server
        defer { agent.send(SIGKILL) }
        let id = try await accepted("ws-0102", on: server, token: lena)

        let text = "My PIN is 4711 — änderbar"
        let sent = try await chat(id, text, on: server, token: lena)
        #expect(sent.json(Schemas.ChatMessage.self)?.text == text, "\(sent.body)")
        #expect(
            try await server.sql(
                "SELECT details->>'text' IS NULL, details->>'digest' = 'sha256:' || "
                    + "encode(sha256(convert_to('\(text)', 'UTF8')), 'hex'), details->>'length' "
                    + "FROM audit_events WHERE event = 'chat.message' AND session_id = '\(id)'") == "t|t|25")
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE details::text LIKE '%4711%'") == "0")
        let transcript = try await HTTP.get(server.base + "/api/v1/sessions/\(id)/chat", token: lena)
        let line = try #require(transcript.json(Schemas.ChatTranscript.self)?.messages.first, "\(transcript.body)")
        #expect(line.text == nil)
        #expect(line.digest?.hasPrefix("sha256:") == true)
        #expect(try await server.auditChainIntact().intact)
    }
}

/// The limits the server applies, as the tests expect them.
enum TestLimits {
    static let chatLinesPerWindow = 30
}
