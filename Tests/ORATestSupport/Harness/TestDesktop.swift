public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An Xvfb display with a blue root window and an `xev` window recording its input.
public final class TestDesktop: @unchecked Sendable {
    public let display: String
    private let server: ChildProcess
    private let recorder: ChildProcess

    public init() async throws {
        var chosen: (Int, ChildProcess)?
        for _ in 0..<20 {
            let number = Int.random(in: 100...899)
            // A socket left by a killed server would look like this one ready before it listens.
            guard !FileManager.default.fileExists(atPath: "/tmp/.X\(number)-lock"),
                !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)")
            else { continue }
            let server = try ChildProcess(
                "/usr/bin/Xvfb",
                arguments: [":\(number)", "-screen", "0", "320x240x24", "-nolisten", "tcp", "-noreset"])
            // Ours only when its lock names this server: another test may have started one on the same number a
            // moment before, and this one is then about to give up.
            func ours() -> Bool {
                guard server.isRunning, FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)"),
                    let lock = try? String(contentsOfFile: "/tmp/.X\(number)-lock", encoding: .utf8)
                else { return false }
                return Int32(lock.trimmingCharacters(in: .whitespacesAndNewlines)) == server.processIdentifier
            }
            for _ in 0..<100 {
                if !server.isRunning || ours() { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            if ours() {
                chosen = (number, server)
                break
            }
            server.send(SIGKILL)
        }
        guard let (number, server) = chosen else { throw TestSetupError("Xvfb did not start") }
        display = ":\(number)"
        self.server = server
        let painted = await ChildProcess.runAsync(
            "/usr/bin/xsetroot", arguments: ["-display", display, "-solid", "#3366cc"])
        guard painted.status == 0 else { throw TestSetupError("xsetroot: \(painted.standardError)") }
        recorder = try ChildProcess(
            "/usr/bin/stdbuf",
            arguments: ["-oL", "/usr/bin/xev", "-display", display, "-geometry", "100x100+200+120"])
        for _ in 0..<100 where !recorder.standardOutputSoFar.contains("Expose event") {
            try await Task.sleep(for: .milliseconds(50))
        }
        // Without its window on the screen, "no input arrived" would prove nothing.
        guard recorder.standardOutputSoFar.contains("Expose event") else {
            throw TestSetupError("the xev window did not appear on \(display)")
        }
    }

    deinit {
        recorder.send(SIGKILL)
        server.send(SIGKILL)
        // Killed, Xvfb leaves its lock and socket behind, and the display number would stay taken for good.
        try? FileManager.default.removeItem(atPath: "/tmp/.X\(display.dropFirst())-lock")
        try? FileManager.default.removeItem(atPath: "/tmp/.X11-unix/X\(display.dropFirst())")
    }

    /// Every key and button event the window has received so far, presses and releases, as xev names them.
    public var keyAndButtonEvents: [String] {
        recorder.standardOutputSoFar.split(separator: "\n").filter {
            $0.hasPrefix("KeyPress event") || $0.hasPrefix("KeyRelease event") || $0.hasPrefix("ButtonPress event")
                || $0.hasPrefix("ButtonRelease event")
        }.map(String.init)
    }

    /// The key presses and button presses the window has received so far.
    public var inputs: [String] {
        recorder.standardOutputSoFar.split(separator: "\n").filter {
            $0.hasPrefix("KeyPress event") || $0.hasPrefix("ButtonPress event")
        }.map(String.init)
    }
}
