public import Foundation
public import ORACore

/// What the person at the machine is shown while a session goes on, built from the agent's own state — the same
/// state that filters the helper's input — never from the server's word alone: who helps, what they can do right
/// now and since when, the ticket and reason, the buttons that apply, and the chat. The session window and the
/// terminal pane both draw it; every text from outside is escaped here, once.
public struct SessionView: Sendable, Hashable {
    /// What the helper can do right now.
    public enum Access: String, Sendable, Hashable, Codable {
        /// The person accepted; the helper may open the screen but has not yet.
        case mayLook = "may_look"
        /// The helper's viewer shows the screen.
        case sees
        /// The helper sees the screen and controls keyboard and mouse.
        case controls
    }

    /// One chat line as the person sees it.
    public struct Line: Sendable, Hashable {
        /// Whether the line was delivered, is on its way (the person's own), or was not delivered and why.
        public enum Status: Sendable, Hashable {
            case delivered
            case sending
            case refused(String)
        }

        /// Who wrote it.
        public var from: ChatMessage.Author
        /// The name shown for the writer ("You" for the person's own lines).
        public var name: String
        /// The line as typed.
        public var text: String
        /// When it was written or delivered.
        public var at: Date
        /// Delivered, sending or refused.
        public var status: Status

        /// Creates a line.
        public init(from: ChatMessage.Author, name: String, text: String, at: Date, status: Status) {
            self.from = from
            self.name = name
            self.text = text
            self.at = at
            self.status = status
        }
    }

    /// The helper, from the offer the person accepted.
    public var helper: Offer.Helper
    /// What the helper can do right now: derived from the agent's record of control and its open viewers, never
    /// set on its own.
    public var access: Access { hasControl ? .controls : viewers > 0 ? .sees : .mayLook }
    /// Whether the person granted control, as the agent's own record says (`AgentRunner` keeps the two equal).
    public private(set) var hasControl = false
    /// Since when `access` holds.
    public private(set) var since: Date
    /// How many of the helper's viewers show the screen now.
    public private(set) var viewers = 0
    /// The offer's ticket, if any.
    public var ticket: String?
    /// The offer's reason, if any.
    public var reason: String?
    /// The chat so far, in order.
    public var chat: [Line]
    /// A short note under the chat (a line the agent would not send, and why); `nil` when there is none.
    public var notice: String?
    /// Counts the changes, so that a window given two views at once keeps the later.
    public var revision = 0

    /// Creates a view of the session `offer` started, as accepted at `acceptedAt`.
    public init(offer: Offer, acceptedAt: Date) {
        helper = offer.helper
        since = acceptedAt
        ticket = offer.ticket
        reason = offer.reason
        chat = []
        notice = nil
    }

    // MARK: Changes, as the agent's state changes

    /// The agent's record of control is `granted`, from `date`.
    public mutating func setControl(_ granted: Bool, at date: Date) {
        changing(at: date) { $0.hasControl = granted }
    }

    /// A viewer of the helper's opened the screen.
    public mutating func viewerAttached(at date: Date) {
        changing(at: date) { $0.viewers += 1 }
    }

    /// A viewer of the helper's closed.
    public mutating func viewerLeft(at date: Date) {
        changing(at: date) { $0.viewers = max(0, $0.viewers - 1) }
    }

    /// Applies `change`; when what the helper can do changed with it, it holds since `date`.
    private mutating func changing(at date: Date, _ change: (inout SessionView) -> Void) {
        let before = access
        change(&self)
        if access != before { since = date }
    }

    /// The person wrote `text`: shown at once, as on its way.
    public mutating func write(_ text: String, at date: Date) {
        chat.append(Line(from: .person, name: "You", text: text, at: date, status: .sending))
        notice = nil
    }

    /// A line the server delivered: the helper's is added; the person's own confirms the oldest on its way.
    public mutating func receive(_ message: ChatMessage) {
        if message.from == .person, let index = chat.firstIndex(where: { $0.status == .sending }) {
            chat[index].status = .delivered
            chat[index].at = message.at
            return
        }
        let name = message.from == .person ? "You" : message.name
        chat.append(Line(from: message.from, name: name, text: message.text, at: message.at, status: .delivered))
    }

    /// The person's oldest line on its way was not delivered, for `reason`.
    public mutating func refuseOldestSending(because reason: String) {
        guard let index = chat.firstIndex(where: { $0.status == .sending }) else { return }
        chat[index].status = .refused(reason)
    }

    // MARK: Texts

    /// The ticket as shown: "Ticket: INC0012345".
    public var ticketText: String? { ticket.map { "Ticket: \(AuditText.escaped($0))" } }

    /// The reason as shown: "Reason: Outlook keeps asking for my password".
    public var reasonText: String? { reason.map { "Reason: \(AuditText.escaped($0))" } }

    /// The helper as shown: "Lena Wolf (lena.wolf)".
    public var helperText: String { helper.nameText }

    /// The helper's title and department as shown: "Position: Senior Support Engineer, IT Service Desk"; `nil` when
    /// the directory has neither.
    public var positionText: String? { helper.positionText }

    /// What the helper can do, in one sentence: "Lena Wolf controls your keyboard and mouse".
    public var headline: String {
        let name = AuditText.escaped(helper.displayName)
        return switch access {
        case .mayLook: "\(name) may see your screen (not looking now)"
        case .sees: "\(name) sees your screen"
        case .controls: "\(name) sees your screen and controls your keyboard and mouse"
        }
    }

    /// Since when, in the machine's local time: "since 14:30".
    public func sinceText(in zone: TimeZone) -> String {
        "since \(Self.clockTime(since, in: zone))"
    }

    /// Whether Stop control applies now.
    public var canStopControl: Bool { access == .controls }

    /// How a line is shown: "14:31 Lena Wolf: Please open Outlook", with "(sending…)" or "(not sent: why)".
    public static func lineText(_ line: Line, in zone: TimeZone) -> String {
        let base = "\(clockTime(line.at, in: zone)) \(AuditText.escaped(line.name)): \(AuditText.escaped(line.text))"
        return switch line.status {
        case .delivered: base
        case .sending: base + " (sending…)"
        case .refused(let reason): base + " (not sent: \(AuditText.escaped(reason)))"
        }
    }

    /// The note shown when the session ends: who ended it and when.
    public static func endNote(
        _ reason: SessionEndReason, helper: Offer.Helper, at date: Date, in zone: TimeZone
    ) -> String {
        let name = AuditText.escaped(helper.displayName)
        let time = clockTime(date, in: zone)
        return switch reason {
        case .helperEnded: "\(name) ended the session at \(time)."
        case .noviceEnded: "You ended the session at \(time)."
        case .adminTerminated: "An administrator ended the session at \(time)."
        case .policyRevoked: "The session was ended at \(time): the policy no longer allows it."
        case .membershipLost: "The session was ended at \(time): \(name) may no longer help here."
        case .maxDuration: "The session reached the longest time its policy allows, at \(time)."
        case .agentDisconnected, .serverRestart:
            "The connection to the helpdesk ended at \(time); so did the session."
        case .declined, .consentTimeout: "The session ended at \(time)."
        }
    }

    /// "14:32", in `zone`.
    static func clockTime(_ date: Date, in zone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        return String(format: "%02d:%02d", parts.hour ?? 0, parts.minute ?? 0)
    }
}
