import Foundation
import ORATestSupport
import Testing

/// `ora-agent doctor` against the real server, a real Xvfb display and x11vnc: exit 0 only when a session would
/// work, and each problem named with its fix.
@Suite("ora-agent doctor")
struct AgentDoctorTests {
    @Test("all is well on an enrolled machine with a display; each broken part is named with its fix")
    func doctor() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let desktop = try await TestDesktop()
        let consent = try OfferFixtures.consentScript(in: setup.files)
        let agent = SourceTree.binary("ora-agent")
        func doctor(
            _ extra: [String] = [], state: String? = nil, environment: [String: String] = [:]
        ) async -> ChildProcess.Result {
            await ChildProcess.runAsync(
                agent,
                arguments: [
                    "doctor", "--state-dir", state ?? setup.state, "--consent", "command", "--consent-command",
                    consent,
                ] + extra,
                environment: ["DISPLAY": desktop.display, "PATH": "/usr/local/bin:/usr/bin:/bin"].merging(environment) {
                    $1
                })
        }

        let healthy = await doctor()
        #expect(healthy.status == 0, "\(healthy.standardOutput)\(healthy.standardError)")
        let lines = healthy.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first == "ok    enrollment  enrolled as ws-0101 with \(setup.server.base)", "\(lines)")
        #expect(lines.contains("ok    server      \(setup.server.base) answers (plain HTTP on this machine)"))
        #expect(lines.contains { $0.hasPrefix("ok    clock       within ") })
        #expect(lines.contains("ok    display     X11 display \(desktop.display) answers"))
        #expect(lines.contains("ok    screen      x11vnc shares \(desktop.display) (RFB 003.008)"), "\(lines)")
        #expect(lines.contains("ok    consent     the person is asked by \(consent)"))
        #expect(lines.last == "a session would work")

        // A key others can read: named, with the command that fixes it.
        let key = setup.state + "/device-key.pem"
        chmod(key, 0o644)
        let exposed = await doctor()
        #expect(exposed.status == 1)
        #expect(
            exposed.standardOutput.contains(
                "FAIL  enrollment  the device key \(key) can be read by other users\n"
                    + "                  fix: chmod 600 \(key), and enroll again if others may have read it"),
            "\(exposed.standardOutput)")
        chmod(key, 0o600)

        // No display, a Wayland session, no screen backend, no such consent program.
        let noDisplay = await doctor(["--display", ":7"])
        #expect(noDisplay.status == 1)
        #expect(noDisplay.standardOutput.contains("FAIL  display     no X server answers on display :7"))
        #expect(noDisplay.standardOutput.contains("FAIL  screen      not checked: the display check failed"))
        let wayland = await doctor(environment: ["XDG_SESSION_TYPE": "wayland"])
        #expect(
            wayland.standardOutput.contains("FAIL  display     this is a Wayland session; ora shares X11 displays only")
        )
        let noBackend = await doctor(["--screen-command", "/nonexistent/vnc -inetd"])
        #expect(noBackend.status == 1)
        #expect(noBackend.standardOutput.contains("FAIL  screen      /nonexistent/vnc is not installed"))
        let silentBackend = await doctor(["--screen-command", "/bin/cat"])
        #expect(silentBackend.standardOutput.contains("FAIL  screen      /bin/cat did not start sharing"))
        let noProgram = await ChildProcess.runAsync(
            agent,
            arguments: ["doctor", "--state-dir", setup.state, "--consent", "command", "--consent-command", "/nope"],
            environment: ["DISPLAY": desktop.display])
        #expect(noProgram.standardOutput.contains("FAIL  consent     the consent program /nope is missing"))

        // Not enrolled at all; then enrolled, but the server is gone.
        let empty = try TemporaryDirectory()
        let fresh = await doctor(state: empty.path)
        #expect(fresh.status == 1)
        #expect(fresh.standardOutput.hasPrefix("FAIL  enrollment  this machine is not enrolled\n"))
        _ = await setup.server.stop()
        let stopped = await doctor()
        #expect(stopped.status == 1)
        #expect(stopped.standardOutput.contains("FAIL  server      cannot reach \(setup.server.base)"))
        #expect(stopped.standardOutput.contains("FAIL  clock       not checked: the server check failed"))
        #expect(stopped.standardOutput.hasSuffix("a session would not work: 2 problems above\n"))
    }
}
