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
        let helper =
            "\(AuditText.escaped(offer.helper.displayName)) (\(AuditText.escaped(offer.helper.account)))"
        var lines: [String] = []
        switch kind {
        case .session:
            lines.append(
                offer.mode == .control
                    ? "\(helper) from the helpdesk offers to help you: to see your screen, and later to ask you for control of keyboard and mouse."
                    : "\(helper) from the helpdesk offers to help you by seeing your screen.")
        case .control:
            lines.append("\(helper) asks to use your keyboard and mouse. You can take control back at any time.")
        }
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

    /// While the helper of `offer` has control, offers the person a way to take it back at once.
    /// - Parameter stillControlling: polled; once false (control ended another way) the watch ends.
    /// - Returns: how the person took control back, or `nil` when control ended another way.
    func watchForStop(_ offer: Offer, stillControlling: @escaping @Sendable () -> Bool) async -> ControlStopMethod?

    /// While the session of `offer` goes on, shows the person that they are being helped and offers a way to end
    /// the session at once.
    /// - Parameter stillActive: polled; once false (the session ended another way) the watch ends.
    /// - Returns: true when the person ended the session.
    func watchSession(_ offer: Offer, stillActive: @escaping @Sendable () -> Bool) async -> Bool
}

extension ConsentProvider {
    /// Providers without a window of their own (`terminal`, `command`) watch nothing; the terminal shows the
    /// session's progress in the agent's output.
    public func watchSession(_ offer: Offer, stillActive: @escaping @Sendable () -> Bool) async -> Bool {
        false
    }

    /// Providers without a way to stop control on the machine (`command`) watch nothing.
    public func watchForStop(
        _ offer: Offer, stillControlling: @escaping @Sendable () -> Bool
    ) async
        -> ControlStopMethod?
    {
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
/// dialog or its timeout declines.
public struct DesktopConsentProvider: ConsentProvider {
    /// The zenity program.
    public var zenity: String

    /// Creates the provider.
    public init(zenity: String = "/usr/bin/zenity") {
        self.zenity = zenity
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

    /// A window that stays while the session goes on, with one button: "End session".
    public func watchSession(_ offer: Offer, stillActive: @escaping @Sendable () -> Bool) async -> Bool {
        let who = "\(AuditText.escaped(offer.helper.displayName)) (\(AuditText.escaped(offer.helper.account)))"
        let what = offer.mode == .control ? "can see your screen and may ask for control" : "can see your screen"
        return await Self.window(
            title: "Remote assistance in progress", text: "\(who) from the helpdesk \(what).", button: "End session",
            zenity: zenity, while: stillActive)
    }

    /// Shows a window with `text` and one `button` while `condition` holds.
    /// - Returns: true when the person pressed the button or closed the window; false when `condition` ended it.
    static func window(
        title: String, text: String, button: String, zenity: String,
        while condition: @escaping @Sendable () -> Bool
    ) async -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: zenity)
        process.arguments = [
            "--info", "--title=\(title)", "--no-markup", "--ok-label=\(button)", "--text=\(text)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        while process.isRunning {
            if !condition() {
                process.terminate()
                return false
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return condition()
    }

    /// A window that stays while the helper has control, with one button: "Stop control".
    public func watchForStop(
        _ offer: Offer, stillControlling: @escaping @Sendable () -> Bool
    ) async
        -> ControlStopMethod?
    {
        let pressed = await Self.window(
            title: "Remote assistance: control",
            text: "\(AuditText.escaped(offer.helper.displayName)) is using your keyboard and mouse.",
            button: "Stop control", zenity: zenity, while: stillControlling)
        // The button stops control; closing the window does too: the person wants it gone.
        return pressed ? .button : nil
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
            process.terminate()
            return nil
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }
}

/// Asks on the agent's terminal (`/dev/tty`): the question, then `Allow? [y/N]`; only `y` or `yes` grants. While a
/// session goes on, the terminal reads single keys: E ends the session, and while the helper has control, ESC or
/// Ctrl+C takes it back. One reader has the terminal at a time: a question while it is asked, the session's watch
/// otherwise.
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

    /// Tells the person that the session goes on and how to end it, then reads keys until E or the session's end.
    public func watchSession(_ offer: Offer, stillActive: @escaping @Sendable () -> Bool) async -> Bool {
        let notice =
            "\n\(AuditText.escaped(offer.helper.displayName)) is helping you. Press E at any time to end the session.\n"
        let terminal = self.terminal
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: terminal.watch(notice: notice, stillActive: stillActive))
            }
        }
    }

    /// Tells the person how to take control back, then waits for ESC or Ctrl+C (read by the session's watch), or
    /// until control ends another way.
    public func watchForStop(
        _ offer: Offer, stillControlling: @escaping @Sendable () -> Bool
    ) async
        -> ControlStopMethod?
    {
        let notice =
            "\n\(AuditText.escaped(offer.helper.displayName)) is using your keyboard and mouse. "
            + "Press ESC or Ctrl+C to take control back, E to end the session.\n"
        terminal.show(notice)
        let terminal = self.terminal
        terminal.stopKey.withLock { $0 = .waiting }
        defer { terminal.stopKey.withLock { $0 = .notWatched } }
        while stillControlling() {
            if case .pressed(let method) = terminal.stopKey.withLock({ $0 }) { return method }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
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

/// The agent's terminal as the terminal provider shares it: a question has it while it is asked (line by line,
/// echoed); otherwise the session's watch reads it key by key (no echo, no line editing, no signals).
final class TerminalKeys: Sendable {
    /// Whether a control watch waits for ESC or Ctrl+C, and which was pressed.
    enum StopKey: Sendable {
        case notWatched
        case waiting
        case pressed(ControlStopMethod)
    }

    let stopKey = Mutex(StopKey.notWatched)
    /// Held by whoever reads the terminal.
    private let reader = NSLock()
    private let questionsWaiting = Mutex(0)

    /// Runs `read` with the terminal to itself, as soon as the watch has let go of it.
    func exclusively<Result>(_ read: () -> Result) -> Result {
        questionsWaiting.withLock { $0 += 1 }
        reader.lock()
        questionsWaiting.withLock { $0 -= 1 }
        defer { reader.unlock() }
        return read()
    }

    /// Writes `text` to the terminal.
    func show(_ text: String) {
        let descriptor = open("/dev/tty", O_WRONLY | O_NOCTTY)
        guard descriptor >= 0 else { return }
        _ = text.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
    }

    /// Shows `notice`, then reads keys while `stillActive`, letting go of the terminal while a question is asked.
    /// - Returns: true when the person pressed E.
    func watch(notice: String, stillActive: () -> Bool) -> Bool {
        show(notice)
        while stillActive() {
            let ended = exclusivelyRaw { descriptor in
                while stillActive(), questionsWaiting.withLock({ $0 }) == 0 {
                    var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    let ready = poll(&waiting, 1, 200)
                    if ready < 0 { return false }
                    if ready == 0 { continue }
                    var byte: UInt8 = 0
                    guard read(descriptor, &byte, 1) == 1 else { return false }
                    switch byte {
                    case UInt8(ascii: "e"), UInt8(ascii: "E"): return true
                    case 0x1b: pressed(.escape)
                    case 0x03: pressed(.ctrlC)
                    default: continue
                    }
                }
                return false
            }
            if ended == true { return true }
            if ended == nil { return false }
            // A question is asked: it takes the terminal now.
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    private func pressed(_ method: ControlStopMethod) {
        stopKey.withLock { key in
            if case .waiting = key { key = .pressed(method) }
        }
    }

    /// Runs `read` on the terminal in raw mode, restoring its mode afterwards; `nil` without a terminal.
    private func exclusivelyRaw(_ read: (Int32) -> Bool) -> Bool? {
        reader.lock()
        defer { reader.unlock() }
        let descriptor = open("/dev/tty", O_RDWR | O_NOCTTY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var original = termios()
        guard tcgetattr(descriptor, &original) == 0 else { return nil }
        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
        tcsetattr(descriptor, TCSANOW, &raw)
        defer { tcsetattr(descriptor, TCSANOW, &original) }
        return read(descriptor)
    }
}
