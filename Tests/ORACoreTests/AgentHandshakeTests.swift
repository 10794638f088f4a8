import Crypto
import Foundation
import ORACore
import Testing

@Suite("The server's side of an agent's handshake")
struct AgentHandshakeTests {
    static var machineKey: P256.Signing.PrivateKey {
        try! P256.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x21, count: 32))
    }
    static var otherKey: P256.Signing.PrivateKey {
        try! P256.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x22, count: 32))
    }
    static let nonce = "bm9uY2Utb25l"
    static var enrolled: AgentHandshake.LookUp {
        .enrolled(name: "ws-0101", publicKey: DevicePublicKey.text(machineKey.publicKey))
    }
    static let hello = AgentProtocol.AgentMessage.hello(
        machine: "WS-0101", agentVersion: "0.1.0", operatingSystem: "Debian 12")

    /// A handshake that has sent its challenge for WS-0101.
    func challenged() -> AgentHandshake {
        var handshake = AgentHandshake(serverNames: ["ora.corp.example", "localhost"])
        #expect(handshake.received(.success(Self.hello)) == .lookUp(machine: "WS-0101"))
        #expect(handshake.phase == .lookingUp(machine: "WS-0101"))
        #expect(handshake.lookedUp(Self.enrolled, nonce: Self.nonce) == .challenge(nonce: Self.nonce))
        #expect(handshake.phase == .awaitingAnswer(machine: "ws-0101"))
        return handshake
    }

    func signature(
        server: String = "localhost", machine: String = "WS-0101", nonce: String = Self.nonce,
        key: P256.Signing.PrivateKey = Self.machineKey
    ) throws -> AgentProtocol.AgentMessage {
        .authenticate(
            signature: try AgentAuthentication(server: server, machine: machine, nonce: nonce).sign(with: key))
    }

    @Test("hello, the look-up, the challenge and its signed answer welcome the machine as enrolled; then it speaks")
    func welcome() throws {
        var handshake = challenged()
        #expect(
            handshake.received(.success(try signature()))
                == .welcome(
                    machine: "ws-0101", publicKey: DevicePublicKey.text(Self.machineKey.publicKey),
                    agentVersion: "0.1.0",
                    operatingSystem: "Debian 12"))
        #expect(handshake.phase == .connected(machine: "ws-0101"))
        let message = AgentProtocol.AgentMessage.offerReceived(session: UUID())
        #expect(handshake.received(.success(message)) == .deliver(message))
        #expect(
            handshake.received(.success(Self.hello)) == .deliver(Self.hello), "a later hello is the broker's to judge")
        #expect(handshake.phase == .connected(machine: "ws-0101"))
    }

    @Test("a signature for any of the server's names counts, and none for another server")
    func serverNames() throws {
        var forOtherName = challenged()
        #expect(forOtherName.received(.success(try signature(server: "ora.corp.example"))) != Self.failed)
        var forAnotherServer = challenged()
        #expect(forAnotherServer.received(.success(try signature(server: "evil.example"))) == Self.failed)
        #expect(forAnotherServer.phase == .closed)
    }

    static let failed = AgentHandshake.Action.refuse(
        code: "authentication_failed", text: "the answer is not signed with the enrolled device key")

    @Test(
        "an answer signed with another key, for another nonce or another machine, or garbage, is refused",
        arguments: [
            "other key", "other nonce", "other machine", "not base64", "empty",
        ])
    func forgedAnswers(forgery: String) throws {
        var handshake = challenged()
        let answer: AgentProtocol.AgentMessage =
            switch forgery {
            case "other key": try signature(key: Self.otherKey)
            case "other nonce": try signature(nonce: "b3RoZXI=")
            case "other machine": try signature(machine: "WS-0102")
            case "not base64": .authenticate(signature: "%%%")
            default: .authenticate(signature: "")
            }
        #expect(handshake.received(.success(answer)) == Self.failed)
        #expect(handshake.phase == .closed)
        #expect(handshake.received(.success(try signature())) == .nothing, "nothing is read after a refusal")
    }

    @Test("a stored key that cannot be read refuses the answer rather than accepting it")
    func unreadableKey() throws {
        var handshake = AgentHandshake(serverNames: ["localhost"])
        _ = handshake.received(.success(Self.hello))
        _ = handshake.lookedUp(.enrolled(name: "ws-0101", publicKey: "not a key"), nonce: Self.nonce)
        #expect(handshake.received(.success(try signature())) == Self.failed)
    }

    @Test("messages out of turn close the connection with the reason, never the message's content")
    func outOfTurn() throws {
        var first = AgentHandshake(serverNames: ["localhost"])
        #expect(
            first.received(.success(try signature()))
                == .refuse(code: "protocol", text: "the first message must be hello"))
        #expect(first.phase == .closed)

        var whileLookingUp = AgentHandshake(serverNames: ["localhost"])
        _ = whileLookingUp.received(.success(Self.hello))
        #expect(whileLookingUp.received(.success(Self.hello)) == AgentHandshake.handshakeFailed)
        #expect(whileLookingUp.lookedUp(Self.enrolled, nonce: Self.nonce) == .nothing, "the look-up comes too late")

        var second = challenged()
        #expect(
            second.received(.success(.sessionEnded(session: UUID())))
                == .refuse(code: "protocol", text: "the second message must be authenticate"))
    }

    @Test("an undecodable message says only that the handshake failed until the agent is authenticated")
    func undecodable() throws {
        let error = AgentProtocol.DecodingError("unknown message type")
        var early = AgentHandshake(serverNames: ["localhost"])
        #expect(early.received(.failure(error)) == AgentHandshake.handshakeFailed)
        var challenged = challenged()
        #expect(challenged.received(.failure(error)) == AgentHandshake.handshakeFailed)
        var connected = self.challenged()
        _ = connected.received(.success(try signature()))
        #expect(connected.received(.failure(error)) == .refuse(code: "protocol", text: "unknown message type"))
        #expect(connected.phase == .closed)
    }

    @Test("an unknown or revoked machine is refused with what the look-up said, and nothing is challenged")
    func refusedLookUp() {
        var handshake = AgentHandshake(serverNames: ["localhost"])
        _ = handshake.received(.success(Self.hello))
        let refusal = AgentHandshake.LookUp.refused(code: "not_enrolled", text: "this machine is not enrolled")
        #expect(
            handshake.lookedUp(refusal, nonce: Self.nonce)
                == .refuse(code: "not_enrolled", text: "this machine is not enrolled"))
        #expect(handshake.phase == .closed)
    }

    @Test("closed by the connection (a timeout, the server stopping), the handshake reads nothing more")
    func closedByTheConnection() throws {
        var handshake = challenged()
        handshake.close()
        #expect(handshake.received(.success(try signature())) == .nothing)
        #expect(handshake.phase == .closed)
    }
}
