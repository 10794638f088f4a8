import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The local VNC server the agent starts for each viewer of a session: a program that speaks RFB (RFC 6143) on its
/// standard input and output and opens no listening socket, stopped when the viewer or the session goes. On Linux
/// with X11 that is `x11vnc -inetd`; any other program that speaks RFB on its standard streams can take its place
/// (`ora-agent run --screen-command`), such as `wayvnc` on Wayland once it can run that way.
public struct ScreenBackend: Sendable, Hashable {
    /// The program and its arguments.
    public var command: [String]

    /// A backend that runs `command`.
    /// - Throws: `AgentError.invalidArgument` for an empty command.
    public init(command: [String]) throws(AgentError) {
        guard let program = command.first, !program.isEmpty else {
            throw .invalidArgument("the screen command is empty")
        }
        self.command = command
    }

    /// The program as the helper is told of it: `x11vnc on display :0`, or the program's name.
    public var summary: String {
        let program = (command[0] as NSString).lastPathComponent
        if program == "x11vnc", let flag = command.firstIndex(of: "-display"), flag + 1 < command.count {
            return "x11vnc on display \(command[flag + 1])"
        }
        return program
    }

    /// `x11vnc` on `display`, speaking RFB on its standard streams (`-inetd`), without a password (only the relay
    /// reaches it), quiet (its standard error is not the viewer's), reading no configuration file, and sharing no
    /// clipboard or selection (`-nosel`): what the person has copied must never reach a helper who may only look,
    /// and the relay does not read the desktop's side of the stream to tell.
    public static func x11vnc(display: String) -> ScreenBackend {
        // A literal, non-empty command.
        try! ScreenBackend(
            command: ["x11vnc", "-inetd", "-display", display, "-nopw", "-q", "-norc", "-nossl", "-nosel"])
    }

    /// Starts the program; its standard error goes to `/dev/null`. Its standard input and output are one end of
    /// a socket pair (`x11vnc -inetd` expects a socket there, as inetd would give it); the agent keeps the other.
    /// - Returns: the running program, with the agent's end of the socket pair as a channel.
    /// - Throws: `AgentError.state` when the program cannot be started.
    func start() async throws(AgentError) -> RunningScreen {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw .state("cannot create a socket pair for the screen backend")
        }
        let (mine, theirs) = (ends[0], ends[1])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0].contains("/") ? command[0] : "/usr/bin/env")
        process.arguments = command[0].contains("/") ? Array(command.dropFirst()) : command
        let child = FileHandle(fileDescriptor: theirs, closeOnDealloc: false)
        process.standardInput = child
        process.standardOutput = child
        process.standardError = FileHandle.nullDevice
        let exited = ExitSignal()
        process.terminationHandler = { process in exited.fire(status: process.terminationStatus) }
        do {
            try process.run()
            close(theirs)
        } catch {
            close(theirs)
            close(mine)
            throw .state("cannot start the screen backend \(command[0]): \(error.localizedDescription)")
        }
        let running = RunningScreen(pid: process.processIdentifier, exited: exited)
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .withConnectedSocket(mine) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            running.channel = channel
            return running
        } catch {
            // NIO owns (and has closed) the descriptor once it tried to make a channel of it.
            await running.stop()
            throw .state("cannot talk to the screen backend \(command[0]): \(error)")
        }
    }
}

/// A started screen backend.
final class RunningScreen: @unchecked Sendable {
    /// The agent's end of the backend's socket pair: what it sends (inbound) and what it reads (outbound). Set once, before the value is shared.
    var channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>!
    private let pid: pid_t
    private let exited: ExitSignal

    fileprivate init(pid: pid_t, exited: ExitSignal) {
        self.pid = pid
        self.exited = exited
    }

    /// The program's exit status, once it has exited within `limit`; nil while it runs.
    func exitStatus(within limit: Duration) async -> Int32? {
        await exited.wait(upTo: limit) ? exited.status : nil
    }

    /// Stops the program: its input is closed (a VNC server in inetd mode exits at once), and after two seconds
    /// it is killed.
    func stop() async {
        try? await channel?.channel.close()
        // In a task of its own, so that a cancelled caller still waits for the program instead of giving up at once.
        let (pid, exited) = (self.pid, self.exited)
        await Task {
            if await exited.wait(upTo: .seconds(2)) { return }
            kill(pid, SIGKILL)
            _ = await exited.wait(upTo: .seconds(2))
        }.value
    }
}

/// Fires once, when the backend process exits, with its exit status.
private final class ExitSignal: Sendable {
    private let fired = Mutex<Int32?>(nil)

    func fire(status: Int32) {
        fired.withLock { $0 = status }
    }

    /// The exit status, once fired.
    var status: Int32? {
        fired.withLock { $0 }
    }

    /// Whether it fired within `limit`.
    func wait(upTo limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if fired.withLock({ $0 != nil }) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}
