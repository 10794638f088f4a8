import Foundation
import ORACore
import Testing

@testable import ORAServer

@Suite("An agent's inbox")
struct AgentInboxTests {
    @Test("items come out in order; one drain at a time; messages beyond the limit are refused, the end never")
    func inbox() {
        let inbox = AgentInbox()
        let message = AgentProtocol.AgentMessage.offerReceived(session: UUID())
        #expect(inbox.push(.connected) == .drain)
        for _ in 1..<AgentInbox.limit { #expect(inbox.push(.message(message)) == .queued) }
        #expect(inbox.push(.message(message)) == .full, "the limit counts every waiting item, the start among them")
        #expect(inbox.push(.disconnected(serverStopping: false)) == .queued, "the end is never refused")

        var order: [String] = []
        while let item = inbox.next() {
            switch item {
            case .connected: order.append("connected")
            case .message: order.append("message")
            case .disconnected: order.append("disconnected")
            }
        }
        #expect(order == ["connected"] + Array(repeating: "message", count: AgentInbox.limit - 1) + ["disconnected"])
        #expect(inbox.push(.message(message)) == .drain, "an empty inbox starts a new drain")
    }
}
