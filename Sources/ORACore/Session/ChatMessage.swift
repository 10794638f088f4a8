import Crypto
public import Foundation

/// One chat line of a session as the server delivered it: numbered in the session's order, with who wrote it.
/// The helper and the person at the machine both see these; the server numbers and records each one before
/// delivering it.
public struct ChatMessage: Sendable, Hashable, Codable {
    /// Who wrote a line.
    public enum Author: String, Sendable, Hashable, Codable, CaseIterable {
        /// The helper, from the console or `ora session chat`.
        case helper
        /// The person at the machine, from the session window or the agent's terminal.
        case person
    }

    /// The line's number in its session, from 1, in the order the server delivered them.
    public var sequence: Int
    /// Who wrote it.
    public var from: Author
    /// How the writer is shown: the helper's display name, or the machine's name for the person at it.
    public var name: String
    /// The line, as typed (a valid `ChatLine`).
    public var text: String
    /// When the server took it.
    public var at: Date

    /// Creates a message.
    public init(sequence: Int, from: Author, name: String, text: String, at: Date) {
        self.sequence = sequence
        self.from = from
        self.name = name
        self.text = text
        self.at = at
    }
}

/// What the person at the machine shows of themselves during a session, as their agent reports it: whether the
/// session window (or the terminal pane) is on the screen, and whether they are typing a chat line.
public struct PersonPresence: Sendable, Hashable, Codable {
    /// Whether the session window is on the screen.
    public var window: Bool
    /// Whether the person is typing a chat line (reported at most every few seconds while they type).
    public var typing: Bool

    /// Creates a presence.
    public init(window: Bool, typing: Bool) {
        self.window = window
        self.typing = typing
    }
}

/// How the audit log keeps chat lines, as the security team decides (`audit.chat` in the server's configuration):
/// each line as typed, or only its SHA-256 digest, which proves a line when its text is shown later but does not
/// keep it.
public enum ChatRecording: String, Sendable, Hashable, CaseIterable {
    /// The text as typed (the default, as Remote Assistance's session logs kept it).
    case text
    /// Only `sha256:` and the hexadecimal SHA-256 of the text's UTF-8.
    case digest
}

extension ChatMessage {
    /// The details of the `chat.message` event of a line `author` wrote under `name`: who wrote it (`from`,
    /// `name`), its length in characters, and the text or its digest as `recording` says. The audit log's order is
    /// the transcript's.
    public static func auditDetails(
        from author: Author, name: String, text: String, recording: ChatRecording
    ) -> [String: AuditValue] {
        var details: [String: AuditValue] = [
            "from": .string(author.rawValue), "name": .string(name), "length": .integer(Int64(text.count)),
        ]
        switch recording {
        case .text: details["text"] = .string(text)
        case .digest: details["digest"] = .string(digest(of: text))
        }
        return details
    }

    /// `sha256:` and the hexadecimal SHA-256 of `text`'s UTF-8.
    public static func digest(of text: String) -> String {
        "sha256:" + Hex.encode(SHA256.hash(data: Data(text.utf8)))
    }
}
