import Foundation
import Synchronization

/// A program started by a test, with its output captured in files (pipes could fill up and block it).
public final class ChildProcess: @unchecked Sendable {
    /// The result of a program that ran to its end.
    public struct Result: Sendable {
        /// The exit status, or the signal number for a program killed by a signal.
        public var status: Int32
        /// Whether the program ended through a signal it did not handle.
        public var killedBySignal: Bool
        /// Everything written to standard output.
        public var standardOutput: String
        /// Everything written to standard error.
        public var standardError: String
    }

    private let process = Process()
    private let outputFile: URL
    private let errorFile: URL
    /// Where `type(_:)` writes, for an interactive program.
    private var input: FileHandle?
    /// Signalled by Foundation when the program has ended. `Process.waitUntilExit()` is not used: it runs a run loop
    /// that can miss an end that happened just before it started, and then waits forever.
    private let ended = DispatchSemaphore(value: 0)

    /// Starts `executable`.
    /// - Parameters:
    ///   - executable: the program's path.
    ///   - arguments: its arguments.
    ///   - environment: variables added to (or replacing those of) the test's own environment.
    ///   - standardInput: text the program reads on standard input; none (end of file) when `nil`.
    ///   - interactive: standard input stays open for `type(_:)` (and `standardInput` is not used).
    public init(
        _ executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        standardInput: String? = nil,
        interactive: Bool = false
    ) throws {
        let directory = FileManager.default.temporaryDirectory
        outputFile = directory.appendingPathComponent("ora-test-\(UUID().uuidString).out")
        errorFile = directory.appendingPathComponent("ora-test-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // Every program trusts the tests' servers (`TestTLS`), unless `environment` says otherwise.
        process.environment = ProcessInfo.processInfo.environment.merging(TestTLS.clientEnvironment) { _, new in new }
            .merging(environment) { _, new in new }
        // The program gets its own copies of these descriptors; the test's are closed once it has started (the
        // Process would otherwise keep them open for as long as the test process runs).
        var handles: [FileHandle] = []
        defer { for handle in handles { try? handle.close() } }
        if interactive {
            let pipe = Pipe()
            input = pipe.fileHandleForWriting
            handles.append(pipe.fileHandleForReading)
            process.standardInput = pipe.fileHandleForReading
        } else if let standardInput {
            let inputFile = directory.appendingPathComponent("ora-test-\(UUID().uuidString).in")
            try Data(standardInput.utf8).write(to: inputFile)
            handles.append(try FileHandle(forReadingFrom: inputFile))
            try? FileManager.default.removeItem(at: inputFile)
            process.standardInput = handles.last
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        handles.append(try FileHandle(forWritingTo: outputFile))
        process.standardOutput = handles.last
        handles.append(try FileHandle(forWritingTo: errorFile))
        process.standardError = handles.last
        process.terminationHandler = { [ended] process in
            Leftovers.forget(process.processIdentifier)
            ended.signal()
        }
        try process.run()
        Leftovers.stopAtExit(process.processIdentifier)
        // A program that ended already, its handler perhaps run before the line above, is not stopped: its number
        // may be another process's by then.
        if !process.isRunning { Leftovers.forget(process.processIdentifier) }
    }

    /// Writes `text` to the standard input of a program started `interactive`.
    public func type(_ text: String) throws {
        guard let input else { throw TestSetupError("the program was not started interactive") }
        try input.write(contentsOf: Data(text.utf8))
    }

    /// Ends the standard input of a program started `interactive`.
    public func closeInput() {
        try? input?.close()
    }

    deinit {
        try? input?.close()
        if process.isRunning { process.interrupt(); kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: outputFile)
        try? FileManager.default.removeItem(at: errorFile)
    }

    /// Runs `executable` to its end, waiting in the background so that no cooperative thread is blocked: the test
    /// process has as many of those as the machine has cores, and a test that blocks one holds up every other test.
    public static func run(
        _ executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        standardInput: String? = nil
    ) async throws -> Result {
        try await ChildProcess(
            executable, arguments: arguments, environment: environment, standardInput: standardInput
        ).exit()
    }

    /// Runs `executable` to its end, blocking the calling thread: only for where nothing can wait (a `deinit`), and
    /// then off the cooperative threads (see `run`).
    public static func runBlocking(_ executable: String, arguments: [String]) throws -> Result {
        try ChildProcess(executable, arguments: arguments).waitUntilExit()
    }

    /// Whether the program still runs.
    public var isRunning: Bool { process.isRunning }

    /// The program's process id.
    public var processIdentifier: Int32 { process.processIdentifier }

    /// Sends `signal` to the program.
    /// The process's resident memory in bytes (VmRSS), 0 when it has ended.
    public var residentMemory: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    public func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Standard output so far.
    public var standardOutputSoFar: String {
        (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
    }

    /// Standard error so far.
    public var standardErrorSoFar: String {
        (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
    }

    /// The exit status reported for a program that did not end in time, as timeout(1) reports it.
    public static let timedOut: Int32 = 124

    /// Waits for the program to end and returns what it did. A program still running after `within` is killed and
    /// reported with status `timedOut`, so a test that waits for a hung program fails instead of waiting forever.
    public func waitUntilExit(within: Duration = .seconds(300)) -> Result {
        let deadline = ContinuousClock.now + within
        // Woken by the termination handler, but never relying on it alone: `isRunning` is checked as well.
        while process.isRunning, ContinuousClock.now < deadline {
            _ = ended.wait(timeout: .now() + .milliseconds(50))
        }
        let output = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        let error = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        guard !process.isRunning else {
            send(SIGKILL)
            let name = process.executableURL?.lastPathComponent ?? "the program"
            return Result(
                status: Self.timedOut, killedBySignal: true, standardOutput: output,
                standardError: "\(name) \(process.arguments ?? []) did not end within \(within); killed\n\(error)")
        }
        return Result(
            status: process.terminationStatus,
            killedBySignal: process.terminationReason == .uncaughtSignal,
            standardOutput: output,
            standardError: error
        )
    }

    /// Waits in the background for the program to end (at most `within`, as `waitUntilExit(within:)`), so async
    /// tests do not block a cooperative thread.
    public func exit(within: Duration = .seconds(300)) async -> Result {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: self.waitUntilExit(within: within)) }
        }
    }
}

extension ChildProcess {
    /// Runs `executable` to its end without blocking a cooperative thread; a failure to start is reported as
    /// exit status 127 with the reason on standard error, as a shell would.
    public static func runAsync(
        _ executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        standardInput: String? = nil
    ) async -> Result {
        do {
            return try await run(
                executable, arguments: arguments, environment: environment, standardInput: standardInput)
        } catch {
            return Result(status: 127, killedBySignal: false, standardOutput: "", standardError: "\(error)")
        }
    }
}

/// The programs and services tests started that still run, stopped when the test process exits: a test's objects
/// stop what they started when they are released, but the process can end before that (a server that shares another's
/// database releases it only once it has stopped itself, in a task the end of the run does not wait for).
enum Leftovers {
    private struct State {
        var processes: Set<pid_t> = []
        /// Services by the file that names their process, with the signal that stops them.
        var services: [String: Int32] = [:]
    }

    private static let state = Mutex(State())
    private static let registered: Void = { atexit { Leftovers.stopAll() } }()

    /// Sends SIGTERM to `pid` when the test process exits, unless `forget` was called.
    static func stopAtExit(_ pid: pid_t) {
        _ = registered
        state.withLock { _ = $0.processes.insert(pid) }
    }

    static func forget(_ pid: pid_t) {
        state.withLock { _ = $0.processes.remove(pid) }
    }

    /// Sends `signal` to the process the first line of `pidFile` names when the test process exits, unless
    /// `forgetService` was called.
    static func stopServiceAtExit(pidFile: String, signal: Int32) {
        _ = registered
        state.withLock { $0.services[pidFile] = signal }
    }

    static func forgetService(pidFile: String) {
        state.withLock { $0.services[pidFile] = nil }
    }

    /// The process the first line of `pidFile` names.
    static func process(in pidFile: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let line = text.split(separator: "\n").first
        else { return nil }
        return pid_t(line.trimmingCharacters(in: .whitespaces))
    }

    private static func stopAll() {
        let left = state.withLock { $0 }
        for pid in left.processes { kill(pid, SIGTERM) }
        for (pidFile, signal) in left.services {
            // A file left by a service that was killed names a process that is gone, or by now another one: only a
            // process started with a path under the file's directory is stopped.
            let directory = URL(fileURLWithPath: pidFile).deletingLastPathComponent().path
            guard let pid = process(in: pidFile),
                let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
                command.contains(directory)
            else { continue }
            kill(pid, signal)
        }
    }
}

extension TemporaryDirectory {
    /// Stops a service that `Deploy/dev/services` started under this directory, from a `deinit`: `signal` goes to the
    /// process named by the first line of `pidFile` at once, so the service ends even if the test process ends
    /// first; `services down` then waits for it off the cooperative threads (see `ChildProcess.run`), and the
    /// directory is kept until it is done.
    func stopService(_ service: String, pidFile: String, signal: Int32) {
        Leftovers.forgetService(pidFile: path + "/" + pidFile)
        if let pid = Leftovers.process(in: path + "/" + pidFile) { kill(pid, signal) }
        DispatchQueue.global().async {
            _ = try? ChildProcess.runBlocking(
                SourceTree.root + "/Deploy/dev/services", arguments: ["down", "--only", service, "--state", self.path])
        }
    }
}
