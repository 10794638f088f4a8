import Foundation
import ORACore
import Testing

@testable import ORAAgent

@Suite("What the person at the machine is shown")
struct SessionViewTests {
    static let zone = TimeZone(identifier: "Europe/Berlin")!
    /// 14:30:00 in Berlin.
    static let accepted = Date(timeIntervalSince1970: 1_796_563_800)

    static func offer(
        ticket: String? = "INC0012345", reason: String? = "Outlook keeps asking for my password"
    )
        -> Offer
    {
        Offer(
            session: UUID(), machine: "ws-0101",
            helper: .init(
                account: "lena.wolf", dn: "uid=lena.wolf,ou=People,dc=corp,dc=example", displayName: "Lena Wolf",
                title: "Senior Support Engineer", department: "IT Service Desk"),
            mode: .control, ticket: ticket, reason: reason, policyVersion: 3, policies: ["tier2"],
            consentTimeoutSeconds: 60, issuedAt: AuditTimestamp(accepted))
    }

    @Test("the headline follows what the helper can do: may look, sees, controls, and back after control ends")
    func access() {
        var view = SessionView(offer: Self.offer(), acceptedAt: Self.accepted)
        #expect(view.headline == "Lena Wolf may see your screen (not looking now)")
        #expect(view.sinceText(in: Self.zone) == "since 14:30")
        #expect(!view.canStopControl)
        view.viewerAttached(at: Self.accepted + 60)
        #expect(view.headline == "Lena Wolf sees your screen")
        #expect(view.sinceText(in: Self.zone) == "since 14:31")
        view.setControl(true, at: Self.accepted + 120)
        #expect(view.headline == "Lena Wolf sees your screen and controls your keyboard and mouse")
        #expect(view.canStopControl)
        // A second viewer changes nothing the person needs to know; control ends, the viewers stay.
        view.viewerAttached(at: Self.accepted + 150)
        #expect(view.sinceText(in: Self.zone) == "since 14:32")
        view.setControl(false, at: Self.accepted + 180)
        #expect(view.headline == "Lena Wolf sees your screen")
        #expect(view.sinceText(in: Self.zone) == "since 14:33")
        view.viewerLeft(at: Self.accepted + 200)
        #expect(view.access == .sees)
        view.viewerLeft(at: Self.accepted + 240)
        #expect(view.headline == "Lena Wolf may see your screen (not looking now)")
        // Control ended with nobody looking: the helper may look again, no more.
        view.setControl(true, at: Self.accepted + 300)
        view.setControl(false, at: Self.accepted + 360)
        #expect(view.access == .mayLook)
    }

    @Test("the person's lines show as on their way until delivered or refused, in the order written")
    func chat() {
        var view = SessionView(offer: Self.offer(), acceptedAt: Self.accepted)
        view.write("first", at: Self.accepted + 60)
        view.write("second", at: Self.accepted + 61)
        view.receive(
            ChatMessage(sequence: 1, from: .helper, name: "Lena Wolf", text: "Hello", at: Self.accepted + 62))
        view.receive(ChatMessage(sequence: 2, from: .person, name: "WS-0101", text: "first", at: Self.accepted + 63))
        view.refuseOldestSending(because: "at most 30 chat messages in 20 seconds; wait a moment")
        #expect(
            view.chat.map { SessionView.lineText($0, in: Self.zone) } == [
                "14:31 You: first",
                "14:31 You: second (not sent: at most 30 chat messages in 20 seconds; wait a moment)",
                "14:31 Lena Wolf: Hello",
            ])
    }

    @Test("text from outside is shown as text: escapes and markup stay visible, nothing is interpreted")
    func escaped() {
        var offer = Self.offer(ticket: "INC\u{1B}[2J", reason: "<script>alert(1)</script>")
        offer.helper.displayName = "Lena\nWolf"
        offer.helper.department = "<i>IT</i>\u{202E}"
        var view = SessionView(offer: offer, acceptedAt: Self.accepted)
        view.receive(
            ChatMessage(sequence: 1, from: .helper, name: "Lena\nWolf", text: "<b>bold</b>", at: Self.accepted))
        #expect(view.headline == "Lena\\nWolf may see your screen (not looking now)")
        #expect(SessionView.lineText(view.chat[0], in: Self.zone) == "14:30 Lena\\nWolf: <b>bold</b>")
        let frame = String(decoding: WindowFrames.state(view, in: Self.zone), as: UTF8.self)
        // The escape is shown as \u{1b}; JSON then doubles its backslash.
        #expect(frame.contains(#""ticket":"Ticket: INC\\u{1b}[2J""#), "\(frame)")
        #expect(frame.contains(#""reason":"Reason: <script>alert(1)</script>""#), "\(frame)")
        #expect(frame.contains(#""position":"Position: Senior Support Engineer, <i>IT</i>\\u{202e}""#), "\(frame)")
        #expect(frame.hasSuffix("\n") && frame.filter { $0 == "\n" }.count == 1)
    }

    @Test(
        "who ended the session, and when, in the final note",
        arguments: [
            (SessionEndReason.helperEnded, "Lena Wolf ended the session at 14:32."),
            (.noviceEnded, "You ended the session at 14:32."),
            (.adminTerminated, "An administrator ended the session at 14:32."),
            (.policyRevoked, "The session was ended at 14:32: the policy no longer allows it."),
            (.agentDisconnected, "The connection to the helpdesk ended at 14:32; so did the session."),
        ])
    func endNote(_ reason: SessionEndReason, _ note: String) {
        #expect(
            SessionView.endNote(reason, helper: Self.offer().helper, at: Self.accepted + 120, in: Self.zone) == note)
    }

    @Test(
        "the window's reports, and what is made of lines that are not one",
        arguments: [
            (#"{"type":"shown"}"#, PersonAction.shown),
            (#"{"type":"stop_control","method":"esc"}"#, .stopControl(.escape)),
            (#"{"type":"stop_control","method":"ctrl_c"}"#, .stopControl(.ctrlC)),
            (#"{"type":"stop_control"}"#, .stopControl(.button)),
            // The window cannot claim the helper gave control back.
            (#"{"type":"stop_control","method":"helper"}"#, .stopControl(.button)),
            (#"{"type":"end_session"}"#, .endSession),
            (#"{"type":"chat","text":"it works now"}"#, .chat("it works now")),
            (#"{"type":"typing","typing":true}"#, .typing(true)),
        ])
    func reports(_ line: String, _ action: PersonAction) {
        #expect(WindowFrames.action(Array(line.utf8)) == action)
    }

    @Test(
        "lines that are not reports are ignored",
        arguments: ["", "not json", #"{"type":"grant_control"}"#, #"{"type":"chat"}"#])
    func notReports(_ line: String) {
        #expect(WindowFrames.action(Array(line.utf8)) == nil)
    }
}

@Suite("The session in the agent's terminal")
struct TerminalPaneTests {
    static func pane(controls: Bool) -> TerminalSessionWindow.Pane {
        var view = SessionView(offer: SessionViewTests.offer(), acceptedAt: SessionViewTests.accepted)
        view.viewerAttached(at: SessionViewTests.accepted)
        if controls { view.setControl(true, at: SessionViewTests.accepted + 60) }
        return TerminalSessionWindow.Pane(view: view)
    }

    static func press(_ keys: String, in pane: inout TerminalSessionWindow.Pane) -> [PersonAction] {
        keys.utf8.flatMap { TerminalSessionWindow.press($0, in: &pane).actions }
    }

    @Test("E ends the session; ESC and Ctrl+C take control back only while the helper has it")
    func keys() {
        var viewing = Self.pane(controls: false)
        #expect(Self.press("\u{1B}\u{03}x", in: &viewing).isEmpty)
        #expect(Self.press("E", in: &viewing) == [.endSession])
        var controlled = Self.pane(controls: true)
        #expect(Self.press("\u{1B}", in: &controlled) == [.stopControl(.escape)])
        #expect(Self.press("\u{03}", in: &controlled) == [.stopControl(.ctrlC)])
    }

    @Test("Enter starts a chat line; typing is reported once; Enter sends it; ESC drops it and still stops control")
    func chatLine() {
        var pane = Self.pane(controls: true)
        #expect(Self.press("\rHi, e", in: &pane) == [.typing(true)])
        #expect(pane.line.map { String(decoding: $0, as: UTF8.self) } == "Hi, e")
        #expect(Self.press("\u{7F}ä\r", in: &pane) == [.chat("Hi, ä"), .typing(false)])
        #expect(pane.line == nil)
        #expect(Self.press("\rhalf\u{1B}", in: &pane) == [.typing(true), .typing(false), .stopControl(.escape)])
        #expect(pane.line == nil)
        // A line of spaces is not sent.
        #expect(Self.press("\r   \r", in: &pane) == [.typing(true), .typing(false)])
    }

    @Test("the pane says what is true now, and after the end only that it ended")
    func text() {
        var pane = Self.pane(controls: true)
        pane.view.receive(
            ChatMessage(
                sequence: 1, from: .helper, name: "Lena Wolf", text: "Please open Outlook",
                at: SessionViewTests.accepted + 70))
        let shown = TerminalSessionWindow.text(of: pane, in: SessionViewTests.zone)
        #expect(shown.hasPrefix("\u{1B}[H\u{1B}[2J"))
        #expect(
            shown.split(separator: "\r\n").dropFirst().map(String.init) == [
                "Lena Wolf sees your screen and controls your keyboard and mouse",
                "Helper: Lena Wolf (lena.wolf), since 14:31", "Position: Senior Support Engineer, IT Service Desk",
                "Ticket: INC0012345",
                "Reason: Outlook keeps asking for my password", "-- Chat --", "14:31 Lena Wolf: Please open Outlook",
                "--", "Esc or Ctrl+C: stop control · E: end session · Enter: write to your helper",
            ])
        pane.view.setControl(false, at: SessionViewTests.accepted + 80)
        #expect(!TerminalSessionWindow.text(of: pane, in: SessionViewTests.zone).contains("controls"))
        pane.note = "Lena Wolf ended the session at 14:32."
        #expect(
            TerminalSessionWindow.text(of: pane, in: SessionViewTests.zone)
                == "\u{1B}[H\u{1B}[2J== Remote assistance ==\r\nLena Wolf ended the session at 14:32.\r\n"
                + "Nobody sees your screen now.\r\n")
    }
}
