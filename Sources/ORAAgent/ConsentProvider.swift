import Foundation
public import ORACore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One question for the person at the machine: may this helper see the screen (the offer), or use keyboard and
/// mouse (a control request)?
public struct ConsentQuestion: Sendable, Hashable {
    /// What is asked.
    public var kind: ConsentReceipt.Question
    /// 0 for the offer, n for the session's n-th control request.
    public var request: Int
    /// The offer, with who offers, why, and under which policy.
    public var offer: Offer

    /// Creates a question.
    public init(kind: ConsentReceipt.Question, request: Int, offer: Offer) {
        self.kind = kind
        self.request = request
        self.offer = offer
    }

    /// The question as the person at the machine reads it; every text from outside is escaped.
    public var text: String {
        let helper = offer.helper.nameText
        var lines: [String] = []
        switch kind {
        case .session where offer.invitation != nil:
            lines.append(
                offer.mode == .control
                    ? "\(helper) from the helpdesk answers your request for help: to see your screen, and later to ask you for control of keyboard and mouse."
                    : "\(helper) from the helpdesk answers your request for help by seeing your screen.")
        case .session:
            lines.append(
                offer.mode == .control
                    ? "\(helper) from the helpdesk offers to help you: to see your screen, and later to ask you for control of keyboard and mouse."
                    : "\(helper) from the helpdesk offers to help you by seeing your screen.")
        case .control:
            lines.append("\(helper) asks to use your keyboard and mouse. You can take control back at any time.")
        }
        if let position = offer.helper.positionText { lines.append(position) }
        if let ticket = offer.ticket { lines.append("Ticket: \(AuditText.escaped(ticket))") }
        if let reason = offer.reason { lines.append("Reason: \(AuditText.escaped(reason))") }
        lines.append("Allowed by: \(offer.policies.map(AuditText.escaped).joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }
}

/// Asks the person at the machine. An answer is given only by that person; no provider accepts by itself, and a
/// question nobody answers in time is declined.
public protocol ConsentProvider: Sendable {
    /// Asks `question` and waits at most `timeout` for the answer.
    /// - Returns: `.granted` only when the person said yes in time; `nil` when nobody answered in time (the server's
    ///   deadline then declines the question).
    func ask(_ question: ConsentQuestion, timeout: Duration) async -> ConsentAnswer?

    /// Opens the window (or pane) that shows the person the session `view` describes, from acceptance to end.
    /// - Returns: the window, or `nil` for a provider without one (`command`: a site's own program shows what it
    ///   chooses).
    func openWindow(_ view: SessionView) async -> (any SessionWindow)?
}

extension ConsentProvider {
    /// No window: for providers that only answer questions.
    public func openWindow(_ view: SessionView) async -> (any SessionWindow)? {
        nil
    }
}

/// Runs a configured program for each question, with the question as JSON on its standard input; its answer
/// decides: exit status 0 and `yes` on the first line of its output mean granted, anything else declined. For
/// integrations with a site's own consent dialog, and for tests.
public struct CommandConsentProvider: ConsentProvider {
    /// The program and its arguments.
    public var command: [String]

    /// Creates the provider.
    public init(command: [String]) {
        self.command = command
    }

    /// What the program reads.
    struct Input: Encodable {
        var question: String
        var request: Int
        var text: String
        var offer: Offer
    }

    public func ask(_ question: ConsentQuestion, timeout: Duration) async -> ConsentAnswer? {
        guard let executable = command.first else { return .declined }
        let json =
            (try? JSONEncoder().encode(
                Input(
                    question: question.kind.rawValue, request: question.request, text: question.text,
                    offer: question.offer)))
            ?? Data()
        guard
            let (status, output) = await ChildProgram.run(
                executable, arguments: Array(command.dropFirst()), input: json, timeout: timeout)
        else { return nil }
        let firstLine = output.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return status == 0 && firstLine.lowercased() == "yes" ? .granted : .declined
    }
}

/// Asks in a dialog on the user's X11 display with zenity (Debian's `zenity`): Yes grants; No, closing the
/// dialog or its timeout declines. The session is shown in the session window (`ora-agent-window`, GTK 3).
public struct DesktopConsentProvider: ConsentProvider {
    /// The zenity program.
    public var zenity: String
    /// The session window program.
    public var windowProgram: String
    /// The Python 3 that runs it.
    public var python: String

    /// Where the session window program is looked for when none is named: next to the agent's executable, then
    /// where the package installs it.
    public static var defaultWindowProgram: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("ora-agent-window").path
        return FileManager.default.fileExists(atPath: beside) ? beside : "/usr/lib/ora-agent/ora-agent-window"
    }

    /// Creates the provider.
    public init(
        zenity: String = "/usr/bin/zenity", windowProgram: String = Self.defaultWindowProgram,
        python: String = "/usr/bin/python3"
    ) {
        self.zenity = zenity
        self.windowProgram = windowProgram
        self.python = python
    }

    public func ask(_ question: ConsentQuestion, timeout: Duration) async -> ConsentAnswer? {
        let seconds = max(1, timeout.components.seconds)
        let arguments = [
            "--question", "--title=Remote assistance", "--no-markup", "--ok-label=Allow", "--cancel-label=Decline",
            "--timeout=\(seconds)", "--text=\(question.text)",
        ]
        guard let (status, _) = await ChildProgram.run(zenity, arguments: arguments, input: nil, timeout: timeout)
        else { return nil }
        // zenity exits 5 when its own timeout ran out: no answer.
        return status == 0 ? .granted : status == 5 ? nil : .declined
    }

    public func openWindow(_ view: SessionView) async -> (any SessionWindow)? {
        DesktopSessionWindow(program: windowProgram, python: python, view: view)
    }
}

/// Runs a program to its end or a time limit.
enum ChildProgram {
    /// Runs `executable` with `input` on its standard input.
    /// - Returns: its exit status and standard output, or `nil` when it could not start or ran past `timeout`
    ///   (it is terminated then).
    static func run(
        _ executable: String, arguments: [String], input: Data?, timeout: Duration
    ) async -> (
        Int32, String
    )? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let standardInput = Pipe()
        let output = Pipe()
        process.standardInput = standardInput
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let ended = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in ended.continuation.finish() }
        do {
            try process.run()
        } catch {
            return nil
        }
        try? standardInput.fileHandleForWriting.write(contentsOf: input ?? Data())
        try? standardInput.fileHandleForWriting.close()
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in ended.stream {}
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard finished else {
            // SIGKILL: a child started from a thread that blocks signals does not see SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }
}

/// Asks on the agent's terminal (`/dev/tty`): the question, then `Allow? [y/N]`; only `y` or `yes` grants. While a
/// session goes on, the terminal shows it, kept current, and reads single keys (`TerminalSessionWindow`). One
/// reader has the terminal at a time: a question while it is asked, the session's pane otherwise.
public struct TerminalConsentProvider: ConsentProvider {
    private let terminal = TerminalKeys()

    /// Creates the provider.
    public init() {}

    public func ask(_ question: ConsentQuestion, timeout: Duration) async -> ConsentAnswer? {
        let seconds = timeout.components.seconds
        let prompt =
            "\n\(question.text)\nAllow? [y/N] (no answer in \(seconds) s means no) "
        let terminal = self.terminal
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let answer = terminal.exclusively { Self.readAnswer(prompt: prompt, timeout: timeout) }
                continuation.resume(returning: answer)
            }
        }
    }

    /// Shows the session in this terminal, kept current, and reads the person's keys there.
    public func openWindow(_ view: SessionView) async -> (any SessionWindow)? {
        TerminalSessionWindow(terminal: terminal, view: view)
    }

    private static func readAnswer(prompt: String, timeout: Duration) -> ConsentAnswer? {
        let descriptor = open("/dev/tty", O_RDWR | O_NOCTTY)
        guard descriptor >= 0 else { return .declined }
        defer { close(descriptor) }
        _ = prompt.withCString { write(descriptor, $0, strlen($0)) }
        let deadline = ContinuousClock.now + timeout
        var line: [UInt8] = []
        while ContinuousClock.now < deadline {
            var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&waiting, 1, 200)
            if ready < 0 { return .declined }
            if ready == 0 { continue }
            var byte: UInt8 = 0
            guard read(descriptor, &byte, 1) == 1 else { return .declined }
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                let answer = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
                return answer == "y" || answer == "yes" ? .granted : .declined
            }
            line.append(byte)
        }
        _ = "\nno answer: declined\n".withCString { write(descriptor, $0, strlen($0)) }
        return nil
    }
}
