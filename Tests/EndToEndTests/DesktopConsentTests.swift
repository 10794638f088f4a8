import Foundation
import ORAClient
import ORACore
import ORATestSupport
import Testing

/// The `desktop` consent provider on a real X display (Xvfb): zenity's questions and the session window
/// (`ora-agent-window`), used with the keyboard through xdotool as the person at the machine would, and read back
/// by their titles and, for the chat, by copying what the window shows.
@Suite("The person's desktop: consent and the session window")
struct DesktopConsentTests {
    /// The ids of the windows whose title matches `title` on `display`, once shown (a window not yet mapped cannot
    /// take the focus).
    func windows(_ title: String = "Remote assistance", on display: String) async -> [String] {
        let found = await ChildProcess.runAsync(
            "/usr/bin/xdotool", arguments: ["search", "--onlyvisible", "--name", title],
            environment: ["DISPLAY": display])
        return found.standardOutput.split(separator: "\n").map(String.init)
    }

    /// The title of `window`, or "" once it is gone.
    func title(of window: String, on display: String) async -> String {
        await ChildProcess.runAsync(
            "/usr/bin/xdotool", arguments: ["getwindowname", window], environment: ["DISPLAY": display]
        ).standardOutput.trimmingCharacters(in: .newlines)
    }

    /// Waits until `window`'s title is `expected`, and returns how long that took.
    @discardableResult
    func waitForTitle(
        _ window: String, on display: String, _ expected: (String) -> Bool, what: String
    ) async throws -> Duration {
        let start = ContinuousClock.now
        for _ in 0..<100 {
            if expected(await title(of: window, on: display)) { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError(
            "the session window never said \(what); its title is '\(await title(of: window, on: display))'")
    }

    /// Presses `keys` (xdotool key names) in `window`, focused first.
    func press(_ keys: String..., in window: String, on display: String) async throws {
        let pressed = await ChildProcess.runAsync(
            "/usr/bin/xdotool", arguments: ["windowfocus", "--sync", window, "key"] + keys,
            environment: ["DISPLAY": display])
        guard pressed.status == 0 else { throw TestSetupError("xdotool: \(pressed.standardError)") }
    }

    /// Types `text` into the focused field of `window`.
    func type(_ text: String, in window: String, on display: String) async throws {
        let typed = await ChildProcess.runAsync(
            "/usr/bin/xdotool", arguments: ["windowfocus", "--sync", window, "type", "--delay", "5", text],
            environment: ["DISPLAY": display])
        guard typed.status == 0 else { throw TestSetupError("xdotool: \(typed.standardError)") }
    }

    /// The chat as the window shows it: focused with its mnemonic (Alt+C), all selected and copied, as a person
    /// could, and read from the clipboard.
    func chatShown(in window: String, on display: String) async throws -> String {
        try await press("alt+c", "ctrl+a", "ctrl+c", in: window, on: display)
        let copied = await ChildProcess.runAsync(
            "/usr/bin/xclip", arguments: ["-o", "-selection", "clipboard"], environment: ["DISPLAY": display])
        return copied.standardOutput
    }

    /// Waits until the window's chat shows `text`.
    func waitForChat(_ text: String, in window: String, on display: String) async throws -> String {
        var shown = ""
        for _ in 0..<50 {
            shown = try await chatShown(in: window, on: display)
            if shown.contains(text) { return shown }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSetupError("the session window's chat never showed '\(text)'; it shows:\n\(shown)")
    }

    /// Waits for a window titled `title`, and presses Return in it (its default button). A dialog just mapped may
    /// not take keys yet (seen on a loaded machine): while it stays open, Return is pressed again, as a person would.
    func pressReturn(_ title: String, on display: String) async throws {
        let window = try await window(title, on: display)
        for _ in 0..<5 {
            let pressed = await ChildProcess.runAsync(
                "/usr/bin/xdotool", arguments: ["windowfocus", "--sync", window, "key", "Return"],
                environment: ["DISPLAY": display])
            // A press that fails because the dialog closed meanwhile was taken by the one before.
            for _ in 0..<20 {
                if await !windows(title, on: display).contains(window) { return }
                guard pressed.status == 0 else { throw TestSetupError("xdotool: \(pressed.standardError)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw TestSetupError("the dialog titled \(title) on \(display) stayed open after Return, 5 times")
    }

    /// The first window titled `title`, once one appears.
    func window(_ title: String, on display: String) async throws -> String {
        for _ in 0..<100 {
            if let window = await windows(title, on: display).first { return window }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSetupError("no window titled \(title) appeared on \(display)")
    }

    /// A desktop with an enrolled machine whose agent asks there, and a helper who offered `mode` and was accepted.
    struct Accepted {
        let desktop: TestDesktop
        let setup: OfferSetup
        let agent: ChildProcess
        let token: String
        let id: String
        /// The session window.
        let window: String
    }

    func accepted(_ machine: String, mode: String) async throws -> Accepted {
        let desktop = try await TestDesktop()
        // A minute to answer: on a loaded machine the dialog can take seconds to come up and take the key.
        let setup = try await OfferSetup.make(
            enrolling: machine,
            policy: OfferFixtures.policy.replacingOccurrences(of: "consent_timeout: 10s", with: "consent_timeout: 60s"))
        let server = setup.server
        let agent = try ChildProcess(
            SourceTree.binary("ora-agent"),
            arguments: [
                "run", "--consent", "desktop", "--state-dir", setup.state, "--display", desktop.display,
                "--window-program", SourceTree.root + "/Deploy/agent/ora-agent-window",
            ],
            environment: ["DISPLAY": desktop.display])
        let lena = try await server.token("lena.wolf")
        try await waitUntilOnline(machine.lowercased(), server: server, token: lena)
        let offered = try await HTTP.post(
            server.base + "/api/v1/offers",
            json: #"{"machine": "\#(machine)", "mode": "\#(mode)", "ticket": "INC0000001", "reason": "mail"}"#,
            token: lena)
        let id = try #require(offered.json(Schemas.Session.self)?.id, "\(offered.body)")
        // The question: Return presses Allow.
        try await pressReturn("^Remote assistance$", on: desktop.display)
        _ = try await session(id, on: server, token: lena) { $0.state == .viewing }
        let window = try await window("— Remote assistance$", on: desktop.display)
        return Accepted(desktop: desktop, setup: setup, agent: agent, token: lena, id: id, window: window)
    }

    @Test(
        "the session window tells the truth through control, Esc, Stop control and chat both ways, and closes with who ended it"
    )
    func sessionWindow() async throws {
        let session = try await accepted("WS-0102", mode: "control")
        let (server, display, window, lena, id) =
            (session.setup.server, session.desktop.display, session.window, session.token, session.id)
        defer { session.agent.send(SIGKILL) }
        try await waitForTitle(
            window, on: display, { $0 == "Lena Wolf may see your screen (not looking now) — Remote assistance" },
            what: "who is there")
        _ = try await ORATestSupport.session(id, on: server, token: lena) { $0.person?.window == true }

        // Control granted: the window says so at once, and offers Stop control; Esc in it takes control back.
        for how in ["esc", "button"] {
            let requested = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/control", json: "{}", token: lena)
            #expect(requested.status == 200, "\(requested.body)")
            try await pressReturn("^Remote assistance$", on: display)
            _ = try await ORATestSupport.session(id, on: server, token: lena) { $0.state == .controlling }
            try await waitForTitle(
                window, on: display, { $0.contains("controls your keyboard and mouse") }, what: "control")
            try await press(how == "esc" ? "Escape" : "alt+s", in: window, on: display)
            let stopped = try await ORATestSupport.session(id, on: server, token: lena) { $0.state == .viewing }
            #expect(stopped.controlStoppedBy?.rawValue == how)
            try await waitForTitle(
                window, on: display, { $0 == "Lena Wolf may see your screen (not looking now) — Remote assistance" },
                what: "that control ended (\(how))")
        }
        #expect(
            try await server.sql(
                "SELECT string_agg(details->>'how', ',' ORDER BY sequence) FROM audit_events "
                    + "WHERE event = 'control.stopped' AND session_id = '\(id)'") == "esc,button")

        // Chat: the person writes in the window; the helper reads it in `ora session chat` and answers there.
        let cli = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let chat = try ChildProcess(
            cli.ora, arguments: ["session", "chat", id], environment: cli.environment, interactive: true)
        defer { chat.send(SIGKILL) }
        // Alt+M to the message first: the focus is still on Stop control, just pressed.
        try await press("alt+m", in: window, on: display)
        try await type("It asks for my password", in: window, on: display)
        try await press("Return", in: window, on: display)
        // A minute: each line is recorded in the audit log before it is delivered, and the log may be busy.
        if try await !eventually(
            within: .seconds(60), { chat.standardOutputSoFar.contains("WS-0102: It asks for my password") })
        {
            let shown = (try? await chatShown(in: window, on: display)) ?? "?"
            let recorded =
                (try? await server.sql("SELECT count(*) FROM audit_events WHERE event = 'chat.message'")) ?? "?"
            Issue.record(
                """
                the helper's chat shows: \(chat.standardOutputSoFar)
                the window's chat shows: \(shown); chat.message events: \(recorded)
                the agent's log ends: \(session.agent.standardErrorSoFar.suffix(3000))
                """)
        }
        try chat.type("Please open Outlook\n")
        _ = try await waitForChat("Lena Wolf: Please open Outlook", in: window, on: display)

        // Outside text is shown as text; a line too long or with control characters is refused, saying why.
        let tooLong = try await HTTP.post(
            server.base + "/api/v1/sessions/\(id)/chat",
            json: #"{"text": "\#(String(repeating: "x", count: 100_000))"}"#,
            token: lena)
        #expect(tooLong.status == 400, "\(tooLong.status)")
        #expect(tooLong.body.contains("at most 1000 characters, not 100000"), "\(tooLong.body)")
        let control = try await HTTP.post(
            server.base + "/api/v1/sessions/\(id)/chat", json: #"{"text": "look\u001b[2J here"}"#, token: lena)
        #expect(control.status == 400, "\(control.status)")
        #expect(control.body.contains("character 5 is a control character (U+001B)"), "\(control.body)")
        let script = try await HTTP.post(
            server.base + "/api/v1/sessions/\(id)/chat", json: #"{"text": "<script>alert(1)</script>"}"#, token: lena)
        #expect(script.status == 201, "\(script.body)")
        let shown = try await waitForChat("Lena Wolf: <script>alert(1)</script>", in: window, on: display)
        #expect(shown.split(separator: "\n").count == 3, "\(shown)")

        // The helper ends the session: the window says who did, and when, then closes by itself.
        let ended = try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: lena)
        #expect(ended.status == 200, "\(ended.body)")
        try await waitForTitle(
            window, on: display, { $0.hasPrefix("Lena Wolf ended the session at ") }, what: "who ended the session")
        var remaining = await windows(on: display)
        for _ in 0..<150 where !remaining.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            remaining = await windows(on: display)
        }
        #expect(remaining.isEmpty, "the session window stayed: \(remaining)")
        #expect(try await eventually { !chat.isRunning }, "ora session chat goes on after the session ended")
        #expect(chat.standardOutputSoFar.contains("the helper ended the session"), "\(chat.standardOutputSoFar)")

        // The transcript is in the audit log, in order, and the chain is intact.
        #expect(
            try await server.sql(
                "SELECT string_agg((details->>'from') || ':' || (details->>'text'), ' | ' ORDER BY sequence) "
                    + "FROM audit_events WHERE event = 'chat.message' AND session_id = '\(id)'")
                == "person:It asks for my password | helper:Please open Outlook | helper:<script>alert(1)</script>")
        let auditor = try await server.token("sara.klein")
        let verified = try await HTTP.get(server.base + "/api/v1/audit/verify", token: auditor)
        #expect(verified.json(Schemas.AuditVerificationReport.self)?.intact == true, "\(verified.body)")
    }

    @Test("killing the session window ends the session as the person's end: the screen is never shared without it")
    func killedWindow() async throws {
        let session = try await accepted("WS-0101", mode: "view")
        let (server, display) = (session.setup.server, session.desktop.display)
        defer { session.agent.send(SIGKILL) }
        let pid = await ChildProcess.runAsync(
            "/usr/bin/xdotool", arguments: ["getwindowpid", session.window], environment: ["DISPLAY": display]
        ).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let killed = await ChildProcess.runAsync("/bin/kill", arguments: ["-KILL", pid])
        #expect(killed.status == 0, "\(killed.standardError)")
        let ended = try await ORATestSupport.session(session.id, on: server, token: session.token) {
            $0.state == .ended
        }
        #expect(ended.endReason?.rawValue == "novice_ended", "\(ended)")
        #expect(
            try await server.sql(
                "SELECT actor_kind || ':' || actor_id FROM audit_events WHERE event = 'session.ended' "
                    + "AND session_id = '\(session.id)'") == "machine:ws-0101")
        #expect(session.agent.standardErrorSoFar.contains("the session window went away while the session went on"))
    }

    @Test("the person ends the session from the window with End session")
    func endSessionButton() async throws {
        let session = try await accepted("WS-0201", mode: "view")
        let (server, display) = (session.setup.server, session.desktop.display)
        defer { session.agent.send(SIGKILL) }
        try await press("alt+e", in: session.window, on: display)
        // The note shows for a few seconds before the window closes: it is read first.
        try await waitForTitle(
            session.window, on: display, { $0.hasPrefix("You ended the session at ") }, what: "that the person ended it"
        )
        let ended = try await ORATestSupport.session(session.id, on: server, token: session.token) {
            $0.state == .ended
        }
        #expect(ended.endReason?.rawValue == "novice_ended", "\(ended)")
        #expect(session.agent.standardErrorSoFar.contains("the person at the machine ended the session"))
    }

    @Test("the menu's Ask for help entry is a valid desktop entry that starts ora-agent ask")
    func menuEntry() async throws {
        let entry = SourceTree.root + "/Deploy/agent/ora-ask-for-help.desktop"
        let checked = await ChildProcess.runAsync("/usr/bin/desktop-file-validate", arguments: [entry])
        #expect(checked.status == 0, "\(checked.standardOutput)\(checked.standardError)")
        let text = try String(contentsOfFile: entry, encoding: .utf8)
        #expect(text.contains("\nExec=ora-agent ask\n") && text.contains("\nName=Ask for help\n"))
    }

    @Test("Ask for help: a new invitation from the form, saved where the person says, listed, and revoked there")
    func askForHelp() async throws {
        let desktop = try await TestDesktop()
        let mailServer = try await TestMailServer()
        let setup = try await OfferSetup.make(
            enrolling: "WS-0101", configuration: OfferFixtures.configuration + mailServer.configuration)
        let display = desktop.display
        let home = try TemporaryDirectory()
        let ask = try ChildProcess(
            SourceTree.binary("ora-agent"), arguments: ["ask", "--state-dir", setup.state],
            environment: ["DISPLAY": display, "HOME": home.path])
        defer { ask.send(SIGKILL) }
        /// The list of invitations, once shown; a note on the way ("Invitation saved", "Invitation revoked") is read
        /// and closed with Return, as a person would.
        func list(closing note: String) async throws -> String {
            for _ in 0..<100 {
                if let shown = await windows("^Ask for help$", on: display).first { return shown }
                if let open = await windows("^\(note)$", on: display).first {
                    _ = await ChildProcess.runAsync(
                        "/usr/bin/xdotool", arguments: ["windowfocus", "--sync", open, "key", "Return"],
                        environment: ["DISPLAY": display])
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestSetupError("the list of invitations did not come back; ora-agent ask: \(ask.standardErrorSoFar)")
        }

        // No invitation yet: the form comes at once. Message, "Valid for" left as it is, the password twice.
        let form = try await window("^Ask for help$", on: display)
        try await type("Outlook keeps asking for my password", in: form, on: display)
        try await press("Tab", "Tab", in: form, on: display)
        try await type("correct horse battery", in: form, on: display)
        try await press("Tab", in: form, on: display)
        try await type("correct horse battery", in: form, on: display)
        try await press("Tab", "Tab", "Return", in: form, on: display)
        // To the helpdesk, or a file: a file (Alt+F), saved where it is proposed.
        let route = try await window("^Send your request$", on: display)
        try await press("alt+f", in: route, on: display)
        try await pressReturn("^Save the invitation$", on: display)
        let file = home.path + "/help-request.orainvite"
        #expect(try await eventually { FileManager.default.fileExists(atPath: file) })
        let signed = try SignedInvitation(fileContent: try #require(FileManager.default.contents(atPath: file)))
        #expect(signed.invitation.message == "Outlook keeps asking for my password")
        #expect(signed.invitation.password != nil)
        #expect(signed.invitation.expiry == signed.invitation.creation.map { $0 + 3600 })

        // The note says where it is and what to do; then the list shows it, and revokes it.
        let shown = try await list(closing: "Invitation saved")
        try await press("Up", "Return", in: shown, on: display)
        var listed = ""
        for _ in 0..<50 {
            listed = await ChildProcess.runAsync(
                SourceTree.binary("ora-agent"), arguments: ["invitations", "--state-dir", setup.state]
            ).standardOutput
            if listed.contains("revoked at") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(listed.contains("revoked at"), "\(listed)")
        let again = try await list(closing: "Invitation revoked")

        // A new one (Alt+N), sent to the helpdesk: the default.
        try await press("alt+n", in: again, on: display)
        var second = again
        for _ in 0..<100 where second == again {
            second = await windows("^Ask for help$", on: display).first { $0 != again } ?? again
            try await Task.sleep(for: .milliseconds(100))
        }
        try await type("The printer says offline", in: second, on: display)
        try await press("Tab", "Tab", in: second, on: display)
        try await type("correct horse battery", in: second, on: display)
        try await press("Tab", in: second, on: display)
        try await type("correct horse battery", in: second, on: display)
        try await press("Tab", "Tab", "Return", in: second, on: display)
        try await pressReturn("^Send your request$", on: display)
        #expect(
            try await eventually {
                try await setup.server.sql("SELECT message FROM invitation_queue") == "The printer says offline"
            })
        let last = try await list(closing: "Sent to the helpdesk")

        // A third, e-mailed (Alt+M) to a colleague whose address the person types.
        try await press("alt+n", in: last, on: display)
        var third = last
        for _ in 0..<100 where third == last {
            third = await windows("^Ask for help$", on: display).first { $0 != last } ?? last
            try await Task.sleep(for: .milliseconds(100))
        }
        try await type("Teams has no sound", in: third, on: display)
        try await press("Tab", "Tab", in: third, on: display)
        try await type("correct horse battery", in: third, on: display)
        try await press("Tab", in: third, on: display)
        try await type("correct horse battery", in: third, on: display)
        try await press("Tab", "Tab", "Return", in: third, on: display)
        let route3 = try await window("^Send your request$", on: display)
        try await press("alt+m", in: route3, on: display)
        let address = try await window("^E-mail your request$", on: display)
        try await type("lena.wolf@corp.example", in: address, on: display)
        try await press("Return", in: address, on: display)
        let mails = try await eventually({ try await mailServer.messages() }, until: { !$0.isEmpty })
        #expect(mails.first?.to == "lena.wolf@corp.example", "\(ask.standardErrorSoFar)")
        #expect(mails.first?.text?.contains("Their message: Teams has no sound") == true)
        let final = try await list(closing: "Sent by e-mail")
        try await press("Escape", in: final, on: display)
        let ended = await ask.exit(within: .seconds(10))
        #expect(ended.status == 0, "\(ended.standardError)")
    }
}
