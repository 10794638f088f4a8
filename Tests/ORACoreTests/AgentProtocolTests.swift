import Crypto
import Foundation
import ORACore
import Testing

@Suite("Agent protocol frames")
struct AgentProtocolTests {
    static let session = UUID(uuidString: "11111111-2222-4333-8444-555555555555")!

    @Test("every agent message survives its frame")
    func agentMessages() throws {
        let receipt = try ConsentReceipt(
            answering: .session, request: 0, of: ConsentReceiptTests.offer(), answer: .granted,
            at: ConsentReceiptTests.time, signingWith: ConsentReceiptTests.machineKey)
        let messages: [AgentProtocol.AgentMessage] = [
            .hello(machine: "ws-0101", agentVersion: "0.1.0", operatingSystem: "Debian GNU/Linux 12"),
            .authenticate(signature: "c2lnbmF0dXJl"), .offerReceived(session: Self.session), .consent(receipt),
            .controlStopped(session: Self.session, method: .ctrlC), .sessionEnded(session: Self.session),
            .chat(session: Self.session, text: "It asks for my password again <b>now</b>"),
            .presence(session: Self.session, presence: PersonPresence(window: true, typing: false)),
        ]
        for message in messages {
            #expect(try AgentProtocol.decodeAgentMessage(AgentProtocol.encode(message)) == message)
        }
        #expect(
            String(
                decoding: AgentProtocol.encode(.controlStopped(session: Self.session, method: .escape)), as: UTF8.self)
                == #"{"method":"esc","session":"11111111-2222-4333-8444-555555555555","type":"control_stopped"}"#)
        #expect(
            String(
                decoding: AgentProtocol.encode(
                    .presence(session: Self.session, presence: PersonPresence(window: true, typing: true))),
                as: UTF8.self)
                == #"{"session":"11111111-2222-4333-8444-555555555555","type":"presence","typing":true,"window":true}"#)
    }

    @Test("every server message survives its frame")
    func serverMessages() throws {
        let messages: [AgentProtocol.ServerMessage] = [
            .challenge(nonce: AgentAuthentication.makeNonce()), .welcome(machine: "ws-0101"),
            .offer(ConsentReceiptTests.offer()), .controlRequest(session: Self.session, request: 2),
            .controlRevoked(session: Self.session), .endSession(session: Self.session, reason: .policyRevoked),
            .openScreen(session: Self.session, ticket: String(repeating: "ab", count: 32), port: 8444),
            .error(code: "revoked", message: "this machine's enrollment was revoked"),
            .chat(
                session: Self.session,
                message: ChatMessage(
                    sequence: 3, from: .helper, name: "Lena Wolf", text: "Please open Outlook",
                    at: Date(timeIntervalSince1970: 1_800_000_000.25))),
            .chatRefused(session: Self.session, reason: "at most 30 chat messages in 20 seconds"),
        ]
        for message in messages {
            #expect(try AgentProtocol.decodeServerMessage(AgentProtocol.encode(message)) == message)
        }
    }

    @Test(
        "hostile frames are refused with a reason that does not repeat them",
        arguments: [
            (#"not json"#, "the frame is not a JSON object"),
            (#"[1,2]"#, "the frame is not a JSON object"),
            (#"{"type":"grant_everything"}"#, "unknown message type from the agent"),
            (#"{"type":"offer_received"}"#, "the message has no 'session'"),
            (#"{"type":"offer_received","session":"not-a-uuid"}"#, "'session' is not valid"),
            (#"{"type":"authenticate","signature":5}"#, "'signature' has the wrong type"),
            (#"{"type":"chat","session":"11111111-2222-4333-8444-555555555555"}"#, "the message has no 'text'"),
            (
                #"{"type":"presence","session":"11111111-2222-4333-8444-555555555555","window":"yes","typing":false}"#,
                "'window' has the wrong type"
            ),
            (
                #"{"type":"control_stopped","session":"11111111-2222-4333-8444-555555555555","method":"sudo"}"#,
                "'method' is not valid"
            ),
            (
                #"{"type":"hello","machine":"ws-0101","agent_version":"1\r\nforged","os":"Debian"}"#,
                "'agent_version' must be 1 to 200 characters without control characters"
            ),
            (
                #"{"type":"hello","machine":"","agent_version":"1","os":"Debian"}"#,
                "'machine' must be 1 to 200 characters without control characters"
            ),
        ])
    func hostileFrames(frame: String, message: String) {
        #expect(throws: AgentProtocol.DecodingError(message)) {
            try AgentProtocol.decodeAgentMessage(Array(frame.utf8))
        }
    }

    @Test("a frame over 64 KiB is refused before it is parsed")
    func oversizedFrame() {
        let frame = Array(#"{"type":"hello","machine":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: 70_000)
        #expect(throws: AgentProtocol.DecodingError("the frame has 70027 bytes, more than 65536")) {
            try AgentProtocol.decodeAgentMessage(frame)
        }
    }
}
