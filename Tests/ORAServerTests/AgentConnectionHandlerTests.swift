import Crypto
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import ORACore
import ORAStore
import ORATestSupport
import PostgresNIO
import Testing

@testable import ORAServer

/// The agents' connection handler in process, on a testing channel, with the gateway and a real database behind it:
/// what the handshake writes, and what it makes of the machine.
@Suite("An agent's connection, in process")
struct AgentConnectionHandlerTests {
    static let server = "ora.test"

    /// A gateway on `client`, with `key` enrolled as WS-0101's device key, and the links it keeps.
    static func gateway(
        _ database: TestDatabase, _ client: PostgresClient, key: P256.Signing.PublicKey
    ) async throws -> (gateway: AgentGateway, links: AgentLinks) {
        let logger = TestDatabase.logger
        try await Migrator(client: client, logger: logger).migrate()
        _ = try await database.sql(
            """
            INSERT INTO machines (name, computer_dn, public_key, operating_system, agent_version, enrolled_at,
                enrolled_by)
            VALUES ('ws-0101', 'cn=WS-0101,ou=Workstations,dc=corp,dc=example', '\(DevicePublicKey.text(key))',
                'Debian 12', '0.1.0', now(), 'uid=peter.schmidt,ou=People,dc=corp,dc=example')
            """)
        let replicas = ReplicaStore(client: client, logger: logger)
        let writer = AuditWriter(endpoint: database.endpoint, logger: logger)
        let audit = SessionAudit(
            writer: writer,
            journal: try AuditJournal(
                writer: writer, log: AuditLog(client: client, logger: logger), path: nil, logger: logger),
            logger: logger, metrics: ServerMetrics())
        let links = AgentLinks()
        let table = SessionTable(offersPerMinute: 6)
        let instance = UUID()
        let broker = SessionBroker(
            table: table, links: links, audit: audit,
            screens: ScreenRelay(clock: .system, metrics: ServerMetrics(), instance: UUID()),
            copies: SessionCopies(store: replicas, instance: instance, logger: logger), clock: .system,
            logger: logger)
        let machines = MachineStore(client: client, logger: logger)
        let gateway = AgentGateway(
            links: links,
            messages: AgentMessages(table: table, broker: broker, machines: machines, clock: .system, logger: logger),
            broker: broker, machines: machines, replicas: replicas,
            instance: instance, settings: AgentSettings(serverNames: [server]), clock: .system, logger: logger)
        return (gateway, links)
    }

    static func frame(_ message: AgentProtocol.AgentMessage) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: AgentProtocol.encode(message)))
    }

    /// The next frame the handler writes, as a server message (or the close frame's code).
    static func written(_ channel: NIOAsyncTestingChannel) async throws -> WebSocketFrame {
        try await channel.waitForOutboundWrite(as: WebSocketFrame.self)
    }

    static func message(_ frame: WebSocketFrame) throws -> AgentProtocol.ServerMessage {
        try AgentProtocol.decodeServerMessage(frame.unmaskedData.readableBytesView)
    }

    @Test(
        "hello, the challenge and its signed answer: welcomed as enrolled, the machine online, and pinged every interval"
    )
    func welcome() async throws {
        let key = P256.Signing.PrivateKey()
        try await TestDatabase.with { database, client in
            let (gateway, links) = try await Self.gateway(database, client, key: key.publicKey)
            let channel = NIOAsyncTestingChannel()
            try await channel.pipeline.addHandler(
                AgentConnectionHandler(gateway: gateway, source: "192.0.2.7", channel: channel))
            try await channel.writeInbound(
                Self.frame(.hello(machine: "WS-0101", agentVersion: "0.1.0", operatingSystem: "Debian 12")))
            guard case .challenge(let nonce) = try Self.message(try await Self.written(channel)) else {
                Issue.record("the first answer is not a challenge")
                return
            }
            let signature = try AgentAuthentication(server: Self.server, machine: "WS-0101", nonce: nonce).sign(
                with: key)
            try await channel.writeInbound(Self.frame(.authenticate(signature: signature)))
            #expect(try Self.message(try await Self.written(channel)) == .welcome(machine: "ws-0101"))
            #expect(links.isOnline("ws-0101"))

            // Pinged a whole interval (30 seconds) after the welcome and every interval after it; an agent that
            // answers stays, one that is silent until the next ping is closed.
            await channel.testingEventLoop.advanceTime(by: .seconds(29))
            #expect(try await channel.readOutbound(as: WebSocketFrame.self) == nil, "no ping before the interval")
            await channel.testingEventLoop.advanceTime(by: .seconds(1))
            #expect(try await Self.written(channel).opcode == .ping)
            try await channel.writeInbound(WebSocketFrame(fin: true, opcode: .pong, data: ByteBuffer()))
            await channel.testingEventLoop.advanceTime(by: .seconds(30))
            #expect(try await Self.written(channel).opcode == .ping)
            await channel.testingEventLoop.advanceTime(by: .seconds(30))
            let close = try await Self.written(channel)
            #expect(close.opcode == .connectionClose)
            var data = close.unmaskedData
            #expect(data.readWebSocketErrorCode() == .goingAway)
            #expect(data.readString(length: data.readableBytes) == "no answer to the last ping")
            _ = try? await channel.finish()
        }
    }

    @Test(
        "an answer signed with another key, a message out of turn, or an unknown machine: an error, then a close frame",
        arguments: ["other key", "out of turn", "unknown machine"])
    func refused(case: String) async throws {
        let key = P256.Signing.PrivateKey()
        try await TestDatabase.with { database, client in
            let (gateway, links) = try await Self.gateway(database, client, key: key.publicKey)
            let channel = NIOAsyncTestingChannel()
            try await channel.pipeline.addHandler(
                AgentConnectionHandler(gateway: gateway, source: "192.0.2.7", channel: channel))
            let expected: AgentProtocol.ServerMessage
            switch `case` {
            case "out of turn":
                try await channel.writeInbound(Self.frame(.sessionEnded(session: UUID())))
                expected = .error(code: "protocol", message: "the first message must be hello")
            case "unknown machine":
                try await channel.writeInbound(
                    Self.frame(.hello(machine: "WS-9999", agentVersion: "0.1.0", operatingSystem: "Debian 12")))
                expected = .error(code: "not_enrolled", message: AgentGateway.notEnrolled)
            default:
                try await channel.writeInbound(
                    Self.frame(.hello(machine: "WS-0101", agentVersion: "0.1.0", operatingSystem: "Debian 12")))
                guard case .challenge(let nonce) = try Self.message(try await Self.written(channel)) else {
                    Issue.record("the first answer is not a challenge")
                    return
                }
                let forged = try AgentAuthentication(server: Self.server, machine: "WS-0101", nonce: nonce).sign(
                    with: P256.Signing.PrivateKey())
                try await channel.writeInbound(Self.frame(.authenticate(signature: forged)))
                expected = .error(
                    code: "authentication_failed",
                    message: "the answer is not signed with the enrolled device key")
            }
            #expect(try Self.message(try await Self.written(channel)) == expected)
            let close = try await Self.written(channel)
            #expect(close.opcode == .connectionClose)
            var data = close.unmaskedData
            #expect(data.readWebSocketErrorCode() == .policyViolation)
            #expect(!links.isOnline("ws-0101"))
            _ = try? await channel.finish()
        }
    }
}
