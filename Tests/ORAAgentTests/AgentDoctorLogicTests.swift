import Foundation
import Testing

@testable import ORAAgent

/// The doctor's judgements that need no I/O: clock differences, display names, the session type, HTTP dates.
@Suite("ora-agent doctor's judgements")
struct AgentDoctorLogicTests {
    static let server = Date(timeIntervalSince1970: 1_796_000_000)

    @Test(
        "a clock within a minute of the server's is fine; further off, it says by how much and which way",
        arguments: [
            (0.4, "ok", "within 1 s of the server's"), (-59.0, "ok", "within 59 s of the server's"),
            (60.8, "ok", "within 61 s of the server's"),
            (61.5, "FAIL", "this machine's clock is 62 s ahead of the server's"),
            (90.0, "FAIL", "this machine's clock is 90 s ahead of the server's"),
            (-3600.0, "FAIL", "this machine's clock is 3600 s behind the server's"),
        ])
    func clock(offset: Double, verdict: String, detail: String) {
        let finding = AgentDoctor.clockFinding(serverDate: Self.server, now: Self.server.addingTimeInterval(offset))
        #expect(finding.verdict.rawValue == verdict)
        #expect(finding.detail == detail)
        #expect((finding.fix != nil) == (verdict == "FAIL"))
    }

    @Test("without the server's time there is nothing to compare, and that is a failure")
    func noDate() {
        #expect(AgentDoctor.clockFinding(serverDate: nil, now: Date()).verdict == .fail)
    }

    @Test("HTTP dates are read as RFC 9110 writes them")
    func httpDate() {
        #expect(
            AgentDoctor.httpDate("Sun, 06 Dec 2026 16:40:00 GMT")
                == ISO8601DateFormatter().date(from: "2026-12-06T16:40:00Z"))
        #expect(AgentDoctor.httpDate("yesterday") == nil)
    }

    @Test(
        "display names: local and remote, with a screen number; anything else is not one",
        arguments: [
            (":0", "", 0), (":1.0", "", 1), ("unix:12", "unix", 12), ("kiosk.corp:10.0", "kiosk.corp", 10),
        ])
    func displayNames(name: String, host: String, number: Int) {
        let parsed = AgentDoctor.displayNumber(name)
        #expect(parsed?.host == host && parsed?.number == number)
    }

    @Test("what is not a display name is said so, and a Wayland session is named, not probed")
    func displays() {
        #expect(AgentDoctor.displayNumber("zero") == nil)
        #expect(AgentDoctor.displayNumber(":x") == nil)
        let wrong = AgentDoctor.displayFinding(display: "zero", environment: [:])
        #expect(wrong.verdict == .fail && wrong.detail == "\"zero\" is not an X11 display name")
        let wayland = AgentDoctor.displayFinding(display: ":0", environment: ["XDG_SESSION_TYPE": "wayland"])
        #expect(wayland.detail == "this is a Wayland session; ora shares X11 displays only")
        let waylandOnly = AgentDoctor.displayFinding(display: ":0", environment: ["WAYLAND_DISPLAY": "wayland-0"])
        #expect(waylandOnly.verdict == .fail)
    }

    @Test("a finding prints its verdict, check and detail in columns, and the fix below a failure")
    func text() {
        let finding = AgentDoctor.Finding("clock", .fail, "off", fix: "set it")
        #expect(finding.text == "FAIL  clock       off\n                  fix: set it")
        #expect(AgentDoctor.Finding("server", .ok, "answers").text == "ok    server      answers")
    }
}
