import Foundation
import ORACore
import Synchronization

/// The session window on the person's desktop: the `ora-agent-window` program (Python with GTK 3, Decision 0007),
/// fed the whole `SessionView` on its standard input at every change, reporting what the person does on its
/// standard output. If it exits before the agent closes it, or cannot start, the person has no window: `gone`.
final class DesktopSessionWindow: SessionWindow {
    let actions: AsyncStream<PersonAction>
    private let continuation: AsyncStream<PersonAction>.Continuation
    private let process = Process()
    private let input: FileHandle
    private let zone: TimeZone
    /// Set when the agent closes the window: its exit is then expected.
    private let closing = Flag()
    /// The revision of the view shown last; held while a frame is written, so frames go out whole and in order.
    private let shown = Mutex(-1)

    /// Starts `program` (run with `python3`) with the first view.
    init(program: String, python: String, view: SessionView, zone: TimeZone = .current) {
        (actions, continuation) = AsyncStream<PersonAction>.makeStream()
        self.zone = zone
        let standardInput = Pipe()
        let standardOutput = Pipe()
        input = standardInput.fileHandleForWriting
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [program]
        process.standardInput = standardInput
        process.standardOutput = standardOutput
        process.standardError = FileHandle.standardError
        let continuation = self.continuation
        let closing = self.closing
        process.terminationHandler = { _ in
            if !closing.isSet { continuation.yield(.gone) }
            continuation.finish()
        }
        do {
            try process.run()
        } catch {
            continuation.yield(.gone)
            continuation.finish()
            return
        }
        // Reports are read on a thread of their own: a blocking read, for as long as the window lives.
        let reader = standardOutput.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<end]
                    pending = Data(pending[pending.index(after: end)...])
                    if let action = WindowFrames.action(line) { continuation.yield(action) }
                }
                // A window that writes endless lines without a break is not one of ours.
                if pending.count > 64 * 1024 { pending.removeAll() }
            }
        }
        show(view)
    }

    func show(_ view: SessionView) {
        shown.withLock { shown in
            guard view.revision > shown, !closing.isSet else { return }
            shown = view.revision
            write(WindowFrames.state(view, in: zone))
        }
    }

    func close(note: String) {
        guard closing.set() else { return }
        shown.withLock { _ in
            write(WindowFrames.close(note: note))
            try? input.close()
        }
        // The window shows the note for a few seconds and exits by itself; one that does not is ended.
        let process = self.process
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(15)) {
            // SIGKILL: a child started from a thread that blocks signals does not see SIGTERM.
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// Writes one frame. The agent ignores SIGPIPE: a window that is gone fails the write, and says so by exiting.
    private func write(_ data: Data) {
        guard process.isRunning else { return }
        try? input.write(contentsOf: data)
    }
}

/// A flag set once, shared with the process's termination handler.
private final class Flag: Sendable {
    private let value = Mutex(false)

    var isSet: Bool { value.withLock { $0 } }

    /// Sets the flag.
    /// - Returns: true when it was not set before.
    func set() -> Bool {
        value.withLock { value in
            defer { value = true }
            return !value
        }
    }
}
