import Foundation
import ORAClient

#if canImport(Glibc)
import Glibc
#endif

enum Terminal {
    /// The width of the terminal standard output writes to; `nil` when it writes to a pipe or a file, where a line
    /// stays one line.
    static var columns: Int? {
        guard isatty(STDOUT_FILENO) == 1 else { return nil }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Asks for a password on the terminal without echoing it.
    static func readPassword(prompt: String) -> String? {
        let descriptor = open("/dev/tty", O_RDWR)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var original = termios()
        guard tcgetattr(descriptor, &original) == 0 else { return nil }
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        silent.c_lflag |= tcflag_t(ECHONL)
        _ = prompt.withCString { write(descriptor, $0, strlen($0)) }
        tcsetattr(descriptor, TCSAFLUSH, &silent)
        defer { tcsetattr(descriptor, TCSAFLUSH, &original) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(descriptor, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads a password from standard input: everything up to the first newline.
    static func readPasswordFromStandardInput() -> String {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        let text = String(decoding: data, as: UTF8.self)
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }
}

/// Times as people read them: local, with the zone's offset (`2026-12-06 16:41:34 +01:00`; `… UTC` in UTC). Programs
/// get ISO 8601 in UTC, from `--json`.
enum TimeText {
    static func local(_ date: Date, in zone: TimeZone = .current) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss xxx"
        let text = formatter.string(from: date)
        return text.hasSuffix(" +00:00") ? text.dropLast(6) + "UTC" : text
    }

    /// An RFC 3339 time from the server, as people read it; the text as it is when it is not one.
    static func local(_ text: String, in zone: TimeZone = .current) -> String {
        RFC3339Transcoder.date(text).map { local($0, in: zone) } ?? text
    }
}
