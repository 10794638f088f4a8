import Crypto
import Foundation
import ORAClient
import ORACore
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
        let ca = try #require(setup.server.caFile)
        #expect(lines.contains("ok    server      \(setup.server.base) answers (TLS verified with the CA in \(ca))"))
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

    @Test("the findings reach the server signed; ora agents show has the latest; forged, replayed and old ones are not")
    func reported() async throws {
        // On plain HTTP on loopback, which the doctor accepts and names (the other test's server has TLS).
        let setup = try await OfferSetup.make(enrolling: "WS-0101", tls: false)
        let desktop = try await TestDesktop()
        let consent = try OfferFixtures.consentScript(in: setup.files)
        func doctor(_ extra: [String] = []) async -> ChildProcess.Result {
            await ChildProcess.runAsync(
                SourceTree.binary("ora-agent"),
                arguments: [
                    "doctor", "--state-dir", setup.state, "--consent", "command", "--consent-command", consent,
                ] + extra,
                environment: ["DISPLAY": desktop.display, "PATH": "/usr/local/bin:/usr/bin:/bin"])
        }
        let never = await setup.admin.run("agents", "show", "ws-0101")
        #expect(never.standardOutput.contains("doctor:        never reported (run ora-agent doctor on the machine)"))

        let healthy = await doctor()
        #expect(healthy.status == 0, "\(healthy.standardOutput)")
        #expect(
            healthy.standardOutput.contains(
                "ok    server      \(setup.server.base) answers (plain HTTP on this machine)"),
            "\(healthy.standardOutput)")
        #expect(
            healthy.standardOutput.contains(
                "reported to \(setup.server.base); `ora agents show ws-0101` shows it\na session would work\n"),
            "\(healthy.standardOutput)")
        let shown = await setup.admin.run("agents", "show", "ws-0101")
        #expect(shown.standardOutput.contains(": a session would work\n"), "\(shown.standardOutput)")
        #expect(
            shown.standardOutput.contains("  ok   screen      x11vnc shares \(desktop.display)"),
            "\(shown.standardOutput)")

        // A broken display: the latest report says so, with the fix, until a newer one comes.
        let broken = await doctor(["--display", ":7"])
        #expect(broken.status == 1)
        #expect(broken.standardOutput.contains("reported to \(setup.server.base)"), "\(broken.standardOutput)")
        let latest = await setup.admin.run("agents", "show", "ws-0101")
        #expect(latest.standardOutput.contains(": 2 problems: a session would not work\n"), "\(latest.standardOutput)")
        #expect(
            latest.standardOutput.contains(
                "  FAIL display     no X server answers on display :7 (/tmp/.X11-unix/X7); fix: run"),
            "\(latest.standardOutput)")
        let quiet = await doctor(["--no-report"])
        #expect(!quiet.standardOutput.contains("reported"), "\(quiet.standardOutput)")
        #expect(await setup.admin.run("agents", "show", "ws-0101").standardOutput == latest.standardOutput)

        // Only the machine's own key, once, and only lately.
        let key = try P256.Signing.PrivateKey(
            pemRepresentation: try String(contentsOfFile: setup.state + "/device-key.pem", encoding: .utf8))
        let checks = [DoctorReport.Check(name: "display", ok: true, detail: "fine")]
        func post(_ report: DoctorReport) async throws -> HTTP.Answer {
            try await HTTP.post(
                setup.server.base + "/agent/v1/doctor",
                json: String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
        }
        let forged = try DoctorReport(
            machine: "ws-0101", checks: checks, at: Date(), signingWith: P256.Signing.PrivateKey())
        let refusedForgery = try await post(forged)
        #expect(refusedForgery.status == 403)
        #expect(refusedForgery.refusal?.error == "bad_signature")
        let genuine = try DoctorReport(machine: "ws-0101", checks: checks, at: Date(), signingWith: key)
        #expect(try await post(genuine).status == 204)
        let replayed = try await post(genuine)
        #expect(replayed.status == 409)
        #expect(replayed.refusal?.error == "report_not_newer")
        let old = try await post(
            try DoctorReport(machine: "ws-0101", checks: checks, at: Date() - 600, signingWith: key))
        #expect(old.status == 400)
        #expect(old.refusal?.error == "stale_report")
        #expect(
            old.refusal?.message
                == "the report's time is more than 5 minutes from the server's: check the machine's clock")
        let unknown = try await post(
            try DoctorReport(machine: "ws-0999", checks: checks, at: Date(), signingWith: key))
        #expect(unknown.status == 404)
    }
}
