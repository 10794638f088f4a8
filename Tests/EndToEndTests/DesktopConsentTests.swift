import Foundation
import ORAClient
import ORATestSupport
import Testing

/// The `desktop` consent provider on a real X display (Xvfb): zenity's dialogs, answered with the keyboard through
/// xdotool as the person at the machine would.
@Suite("Desktop consent")
struct DesktopConsentTests {
    /// The ids of the windows titled `title` on `display`.
    func dialogs(_ title: String = "^Remote assistance", on display: String) async -> [String] {
        let found = await ChildProcess.runAsync(
            "/usr/bin/xdotool", arguments: ["search", "--name", title], environment: ["DISPLAY": display])
        return found.standardOutput.split(separator: "\n").map(String.init)
    }

    /// Waits for a dialog titled `title`, and presses Return in it (its default button). A dialog just mapped may
    /// not take keys yet (seen on a loaded machine): while it stays open, Return is pressed again, as a person would.
    func pressReturn(_ title: String, on display: String) async throws {
        let window = try await dialog(title, on: display)
        for _ in 0..<5 {
            let pressed = await ChildProcess.runAsync(
                "/usr/bin/xdotool", arguments: ["windowfocus", "--sync", window, "key", "Return"],
                environment: ["DISPLAY": display])
            // A press that fails because the dialog closed meanwhile was taken by the one before.
            for _ in 0..<20 {
                if await !dialogs(title, on: display).contains(window) { return }
                guard pressed.status == 0 else { throw TestSetupError("xdotool: \(pressed.standardError)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw TestSetupError("the dialog titled \(title) on \(display) stayed open after Return, 5 times")
    }

    /// The first dialog titled `title`, once one appears.
    func dialog(_ title: String, on display: String) async throws -> String {
        for _ in 0..<100 {
            if let window = await dialogs(title, on: display).first { return window }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSetupError("no dialog titled \(title) appeared on \(display)")
    }

    @Test("the person allows in a dialog, sees that the session goes on, and ends it with End session")
    func endSessionButton() async throws {
        let desktop = try await TestDesktop()
        let setup = try await OfferSetup.make(enrolling: "WS-0102")
        let server = setup.server
        let agent = try ChildProcess(
            SourceTree.binary("ora-agent"),
            arguments: ["run", "--consent", "desktop", "--state-dir", setup.state, "--display", desktop.display],
            environment: ["DISPLAY": desktop.display])
        defer { agent.send(SIGKILL) }
        let hannah = try await server.token("hannah.fischer")
        try await waitUntilOnline("ws-0102", server: server, token: hannah)
        let offered = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0102", "mode": "view", "ticket": "INC0000001"}"#,
            token: hannah)
        let id = try #require(offered.json(Schemas.Session.self)?.id, "\(offered.body)")

        // The question: Return presses Allow.
        try await pressReturn("^Remote assistance$", on: desktop.display)
        _ = try await session(id, on: server, token: hannah) { $0.state == .viewing }
        // Then a window says the session goes on; its button ends it.
        try await pressReturn("^Remote assistance in progress$", on: desktop.display)
        let ended = try await session(id, on: server, token: hannah) { $0.state == .ended }
        #expect(ended.endReason?.rawValue == "novice_ended", "\(ended)")
        #expect(
            try server.sql(
                "SELECT actor_kind || ':' || actor_id FROM audit_events WHERE event = 'session.ended' "
                    + "AND session_id = '\(id)'") == "machine:ws-0102")
        #expect(agent.standardErrorSoFar.contains("the person at the machine ended the session"))
        // No window stays behind.
        var remaining = await dialogs(on: desktop.display)
        for _ in 0..<50 where !remaining.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            remaining = await dialogs(on: desktop.display)
        }
        #expect(remaining.isEmpty, "\(remaining)")
    }
}
