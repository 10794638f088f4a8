public import Foundation
public import ORACore

/// What the person at the machine does in the session window (or the terminal pane).
public enum PersonAction: Sendable, Hashable {
    /// The window is on the screen.
    case shown
    /// Take control back: by the button, ESC or Ctrl+C.
    case stopControl(ControlStopMethod)
    /// End the session for everyone.
    case endSession
    /// A chat line, as typed.
    case chat(String)
    /// Started or stopped typing a chat line.
    case typing(Bool)
    /// The window went away without the agent closing it (killed, crashed, closed by force): the screen must not
    /// stay shared without it.
    case gone
}

/// The window (or pane) that shows the person a session from acceptance to end. The agent gives it the whole
/// `SessionView` at every change and reads what the person does; it keeps nothing the agent does not.
public protocol SessionWindow: Sendable {
    /// What the person does, until the window is closed or gone.
    var actions: AsyncStream<PersonAction> { get }
    /// Shows `view` in place of what was shown, unless it shows a later one already (a higher `revision`).
    func show(_ view: SessionView)
    /// Shows `note` (who ended the session, and when) for a moment, then closes; `actions` then ends.
    func close(note: String)
}

/// The lines the agent and the session window program (`ora-agent-window`) exchange: one JSON object per line.
/// Texts are made here, escaped and complete; the window sets them as plain text and decides nothing.
enum WindowFrames {
    /// A chat line for the window.
    struct Line: Encodable {
        var from: String
        var text: String
        var status: String
    }

    /// The whole state, sent at every change.
    struct State: Encodable {
        var type = "state"
        var title: String
        var helper: String
        var position: String?
        var headline: String
        var access: SessionView.Access
        var since: String
        var ticket: String?
        var reason: String?
        var canStopControl: Bool
        var chat: [Line]
        var notice: String?

        enum CodingKeys: String, CodingKey {
            case type, title, helper, position, headline, access, since, ticket, reason, chat, notice
            case canStopControl = "can_stop_control"
        }
    }

    /// The last frame: the note to show before the window closes.
    struct Close: Encodable {
        var type = "close"
        var note: String
    }

    /// What the window reports.
    struct Report: Decodable {
        var type: String
        var text: String?
        var typing: Bool?
        var method: String?
    }

    /// The title of the window: what the helper can do, so that it reads in the task bar too.
    static func title(_ view: SessionView) -> String {
        "\(view.headline) — Remote assistance"
    }

    /// `view` as the line the window reads.
    static func state(_ view: SessionView, in zone: TimeZone) -> Data {
        let frame = State(
            title: title(view), helper: view.helperText, position: view.positionText, headline: view.headline,
            access: view.access,
            since: view.sinceText(in: zone), ticket: view.ticketText, reason: view.reasonText,
            canStopControl: view.canStopControl,
            chat: view.chat.map { line in
                let status =
                    switch line.status {
                    case .delivered: "delivered"
                    case .sending: "sending"
                    case .refused: "refused"
                    }
                return Line(from: line.from.rawValue, text: SessionView.lineText(line, in: zone), status: status)
            }, notice: view.notice.map(AuditText.escaped))
        return encode(frame)
    }

    /// The closing line.
    static func close(note: String) -> Data {
        encode(Close(note: note))
    }

    /// What one line from the window means; `nil` for a line that is not a report (ignored).
    static func action(_ line: some Collection<UInt8>) -> PersonAction? {
        guard line.count <= 64 * 1024, let report = try? JSONDecoder().decode(Report.self, from: Data(line)) else {
            return nil
        }
        switch report.type {
        case "shown": return .shown
        case "end_session": return .endSession
        case "stop_control":
            // Only what the person can press: the helper's giving back is never the window's to report.
            let method = report.method.flatMap(ControlStopMethod.init(rawValue:)) ?? .button
            return .stopControl(method == .helper ? .button : method)
        case "chat": return report.text.map(PersonAction.chat)
        case "typing": return .typing(report.typing ?? false)
        default: return nil
        }
    }

    private static func encode(_ frame: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ((try? encoder.encode(frame)) ?? Data("{}".utf8)) + Data("\n".utf8)
    }
}
