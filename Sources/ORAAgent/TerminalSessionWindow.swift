import Foundation
import ORACore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The session shown in the agent's terminal: the pane is redrawn whole at every change, so what it says is always
/// the agent's state now, and the person's keys are read there — E ends the session, ESC or Ctrl+C takes control
/// back, Enter starts a chat line (Enter sends it, ESC cancels it).
final class TerminalSessionWindow: SessionWindow {
    /// What the pane shows, and the chat line being typed.
    struct Pane: Sendable {
        var view: SessionView
        /// The chat line being typed, as bytes of UTF-8; `nil` when none is.
        var line: [UInt8]?
        /// The final note, once the session ended.
        var note: String?
    }

    /// How many chat lines the pane shows, the latest.
    static let chatLinesShown = 8

    let actions: AsyncStream<PersonAction>
    private let continuation: AsyncStream<PersonAction>.Continuation
    private let terminal: TerminalKeys
    private let pane: Mutex<Pane>
    private let zone: TimeZone

    init(terminal: TerminalKeys, view: SessionView, zone: TimeZone = .current) {
        (actions, continuation) = AsyncStream<PersonAction>.makeStream()
        self.terminal = terminal
        self.zone = zone
        pane = Mutex(Pane(view: view))
        render()
        continuation.yield(.shown)
        Thread.detachNewThread { [self] in
            terminal.readKeys(
                while: { self.pane.withLock { $0.note == nil } }, resumed: { self.render() },
                key: { self.key($0) })
        }
    }

    func show(_ view: SessionView) {
        let newer = pane.withLock { pane in
            guard view.revision > pane.view.revision, pane.note == nil else { return false }
            pane.view = view
            return true
        }
        if newer { render() }
    }

    func close(note: String) {
        pane.withLock { $0.note = note }
        render()
        continuation.finish()
    }

    private func render() {
        let text = pane.withLock { Self.text(of: $0, in: zone) }
        terminal.showUnlessAsking(text)
    }

    /// Handles one key the person pressed.
    private func key(_ byte: UInt8) {
        let (actions, redraw) = pane.withLock { pane in Self.press(byte, in: &pane) }
        for action in actions { continuation.yield(action) }
        if redraw { render() }
    }

    /// What pressing `byte` does to `pane`, and what the person thereby did.
    /// - Returns: the actions, and whether the pane changed.
    static func press(_ byte: UInt8, in pane: inout Pane) -> (actions: [PersonAction], redraw: Bool) {
        let controls = pane.view.canStopControl
        let escape: UInt8 = 0x1B
        let controlC: UInt8 = 0x03
        let enter = byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
        guard var line = pane.line else {
            switch byte {
            case UInt8(ascii: "e"), UInt8(ascii: "E"): return ([.endSession], false)
            case escape where controls: return ([.stopControl(.escape)], false)
            case controlC where controls: return ([.stopControl(.ctrlC)], false)
            case _ where enter:
                pane.line = []
                return ([], true)
            default: return ([], false)
            }
        }
        // Typing a chat line: ESC and Ctrl+C still take control back first, and drop the line.
        if byte == escape || byte == controlC {
            pane.line = nil
            var actions: [PersonAction] = line.isEmpty ? [] : [.typing(false)]
            if controls { actions.append(.stopControl(byte == escape ? .escape : .ctrlC)) }
            return (actions, true)
        }
        if enter {
            pane.line = nil
            let text = String(decoding: line, as: UTF8.self)
            return (text.allSatisfy(\.isWhitespace) ? [.typing(false)] : [.chat(text), .typing(false)], true)
        }
        if byte == 0x7F || byte == 0x08 {
            var text = String(decoding: line, as: UTF8.self)
            if !text.isEmpty { text.removeLast() }
            pane.line = Array(text.utf8)
            return (text.isEmpty ? [.typing(false)] : [], true)
        }
        guard byte >= 0x20, line.count < ChatLine.largest else { return ([], false) }
        let started = line.isEmpty
        line.append(byte)
        pane.line = line
        return (started ? [.typing(true)] : [], true)
    }

    /// The pane as text: cleared, then who helps and what they can do, the chat, and the keys.
    static func text(of pane: Pane, in zone: TimeZone) -> String {
        let view = pane.view
        var lines = ["\u{1B}[H\u{1B}[2J== Remote assistance =="]
        if let note = pane.note {
            lines.append(note)
            lines.append("Nobody sees your screen now.")
            return lines.joined(separator: "\r\n") + "\r\n"
        }
        lines.append(view.headline)
        lines.append("Helper: \(view.helperText), \(view.sinceText(in: zone))")
        if let position = view.positionText { lines.append(position) }
        if let ticket = view.ticketText { lines.append(ticket) }
        if let reason = view.reasonText { lines.append(reason) }
        lines.append("-- Chat --")
        if view.chat.isEmpty { lines.append("(no messages yet)") }
        for line in view.chat.suffix(chatLinesShown) { lines.append(SessionView.lineText(line, in: zone)) }
        if let notice = view.notice { lines.append("! \(AuditText.escaped(notice))") }
        lines.append("--")
        var keys = ["E: end session", "Enter: write to your helper"]
        if view.canStopControl { keys.insert("Esc or Ctrl+C: stop control", at: 0) }
        if let line = pane.line {
            lines.append(
                "Message (Enter sends, Esc cancels): " + AuditText.escaped(String(decoding: line, as: UTF8.self)))
        } else {
            lines.append(keys.joined(separator: " · "))
        }
        return lines.joined(separator: "\r\n")
    }
}

/// The agent's terminal as the terminal provider shares it: a question has it while it is asked (line by line,
/// echoed); otherwise the session's pane reads it key by key (no echo, no line editing, no signals).
final class TerminalKeys: Sendable {
    /// Held by whoever reads the terminal.
    private let reader = NSLock()
    private let questionsWaiting = Mutex(0)
    /// Whether a question holds the terminal: the pane is not drawn over it.
    private let asking = Mutex(false)

    /// Runs `read` with the terminal to itself, as soon as the pane has let go of it.
    func exclusively<Result>(_ read: () -> Result) -> Result {
        questionsWaiting.withLock { $0 += 1 }
        reader.lock()
        questionsWaiting.withLock { $0 -= 1 }
        asking.withLock { $0 = true }
        defer {
            asking.withLock { $0 = false }
            reader.unlock()
        }
        return read()
    }

    /// Writes `text` to the terminal, unless a question is being asked there (the pane is drawn again after it).
    func showUnlessAsking(_ text: String) {
        guard !asking.withLock({ $0 }) else { return }
        let descriptor = open("/dev/tty", O_WRONLY | O_NOCTTY)
        guard descriptor >= 0 else { return }
        _ = text.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
    }

    /// Reads keys while `active`, giving each to `key`, letting go of the terminal while a question is asked and
    /// calling `resumed` each time it has it back.
    func readKeys(while active: () -> Bool, resumed: () -> Void, key: (UInt8) -> Void) {
        while active() {
            let read = exclusivelyRaw { descriptor in
                resumed()
                while active(), questionsWaiting.withLock({ $0 }) == 0 {
                    var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    let ready = poll(&waiting, 1, 200)
                    if ready < 0 { return false }
                    if ready == 0 { continue }
                    var byte: UInt8 = 0
                    guard Glibc.read(descriptor, &byte, 1) == 1 else { return false }
                    key(byte)
                }
                return true
            }
            // No terminal, or it broke: nothing more to read.
            if read != true { return }
            // A question is asked: it takes the terminal now.
            Thread.sleep(forTimeInterval: 0.05)
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
