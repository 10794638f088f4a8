import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ORACore
import ORAStore
import ServiceLifecycle
import Synchronization

/// The agents' connections to this server: each agent keeps one WebSocket open, proves its device key on every
/// connection, and then receives offers over it. The gateway knows which machines are online here.
public final class AgentGateway: Sendable {
    /// How long an agent has for each step of the handshake.
    static let handshakeTimeout = Duration.seconds(10)

    private struct Link: Sendable {
        let id: UUID
        let outbound: WebSocketOutboundWriter
    }

    private let machines: MachineStore
    private let replicas: ReplicaStore
    private let bus: ReplicaBus
    private let serverNames: [String]
    private let logger: Logger
    private let links = Mutex<[String: Link]>([:])
    /// Set once the broker exists; the broker needs the gateway to send, the gateway the broker to deliver.
    private let broker = Mutex<SessionBroker?>(nil)

    /// Creates the gateway.
    /// - Parameter serverNames: the names agents may address this server by.
    /// - Parameter replicas: where connections are recorded, so other replicas can route to this one.
    init(machines: MachineStore, replicas: ReplicaStore, bus: ReplicaBus, serverNames: [String], logger: Logger) {
        self.machines = machines
        self.replicas = replicas
        self.bus = bus
        self.serverNames = serverNames
        self.logger = logger
    }

    /// Connects the broker that receives the agents' messages.
    public func attach(_ broker: SessionBroker) {
        self.broker.withLock { $0 = broker }
    }

    /// Whether `machine`'s agent is connected to this server.
    public func isOnline(_ machine: String) -> Bool {
        links.withLock { $0[machine] != nil }
    }

    /// The machines whose agents are connected here.
    public var onlineMachines: Set<String> {
        links.withLock { Set($0.keys) }
    }

    /// Closes the connection of `machine`'s agent, here or on the replica it is connected to (after a revocation).
    func disconnect(_ machine: String) async {
        await disconnectHere(machine)
        guard let owner = try? await replicas.connectedInstance(of: machine), owner != bus.instance else { return }
        _ = try? await bus.call(.disconnect(machine: machine), on: owner)
    }

    /// Closes the connection of `machine`'s agent, if it has one here.
    func disconnectHere(_ machine: String) async {
        guard let link = links.withLock({ $0.removeValue(forKey: machine) }) else { return }
        try? await link.outbound.close(.policyViolation, reason: "revoked")
        await broker.withLock({ $0 })?.agentDisconnected(machine, serverStopping: false)
    }

    /// Sends `message` to `machine`'s agent.
    /// - Returns: `false` when the agent is not connected here or the send failed.
    func send(_ message: AgentProtocol.ServerMessage, to machine: String) async -> Bool {
        guard let link = links.withLock({ $0[machine] }) else { return false }
        do {
            try await Self.write(message, to: link.outbound)
            return true
        } catch {
            return false
        }
    }

    /// Writes `message` as one text frame.
    private static func write(
        _ message: AgentProtocol.ServerMessage, to outbound: WebSocketOutboundWriter
    )
        async throws
    {
        try await outbound.write(.text(String(decoding: AgentProtocol.encode(message), as: UTF8.self)))
    }

    /// Serves one agent connection until it closes.
    func serve(
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        source: String
    ) async {
        var messages = inbound.messages(maxSize: AgentProtocol.maximumFrameSize).makeAsyncIterator()
        func write(_ message: AgentProtocol.ServerMessage) async throws {
            try await Self.write(message, to: outbound)
        }
        func refuse(_ code: String, _ text: String) async {
            logger.warning("agent refused", metadata: ["source": "\(source)", "reason": "\(code)"])
            try? await write(.error(code: code, message: text))
            try? await outbound.close(.policyViolation, reason: code)
        }
        func refused(_ code: String, _ text: String) async -> String? {
            await refuse(code, text)
            return nil
        }
        func next() async throws -> AgentProtocol.AgentMessage? {
            guard case .text(let text) = try await messages.next() else { return nil }
            return try AgentProtocol.decodeAgentMessage(Array(text.utf8))
        }

        func handshake() async -> String? {
            do {
                guard case .hello(let name, let version, let system) = try await next() else {
                    return await refused("protocol", "the first message must be hello")
                }
                let lowercased = name.lowercased()
                guard let enrolled = try await machines.machine(named: lowercased) else {
                    return await refused("not_enrolled", "this machine is not enrolled; enroll it again")
                }
                guard enrolled.revokedAt == nil else {
                    return await refused("revoked", "this machine's enrollment was revoked")
                }
                let key = try DevicePublicKey.parse(enrolled.publicKey)
                let nonce = AgentAuthentication.makeNonce()
                try await write(.challenge(nonce: nonce))
                guard case .authenticate(let signature) = try await next() else {
                    return await refused("protocol", "the second message must be authenticate")
                }
                guard
                    serverNames.contains(where: {
                        AgentAuthentication(server: $0, machine: name, nonce: nonce).isValid(
                            signature: signature, for: key)
                    })
                else {
                    return await refused(
                        "authentication_failed", "the answer is not signed with the enrolled device key")
                }
                try await write(.welcome(machine: enrolled.name))
                logger.notice(
                    "agent connected",
                    metadata: [
                        "machine": "\(enrolled.name)", "source": "\(source)",
                        "agent.version": "\(AuditText.escaped(version))", "os": "\(AuditText.escaped(system))",
                    ])
                return enrolled.name
            } catch {
                await refuse("protocol", "the handshake failed")
                return nil
            }
        }

        // Handshake: hello, challenge, signed answer; an agent that takes too long is disconnected.
        let authenticated: String? = await withTaskGroup(of: Void.self) { group in
            group.addTask {
                guard (try? await Task.sleep(for: Self.handshakeTimeout)) != nil else { return }
                try? await outbound.close(.policyViolation, reason: "the handshake took too long")
            }
            defer { group.cancelAll() }
            return await handshake()
        }
        guard let machine = authenticated else { return }

        let link = Link(id: UUID(), outbound: outbound)
        let replaced = links.withLock { $0.updateValue(link, forKey: machine) }
        if let replaced { try? await replaced.outbound.close(.goingAway, reason: "replaced by a newer connection") }
        do {
            try await replicas.recordConnection(of: machine, to: bus.instance, at: Date())
        } catch {
            logger.warning(
                "could not record an agent's connection; other servers will see it offline",
                metadata: ["machine": "\(machine)", "error": "\(DatabaseErrorDescription.describe(error))"])
        }
        let broker = self.broker.withLock { $0 }

        // When the server shuts down, the WebSocket handler closes the connection, so the loop below ends and the
        // shutdown does not wait for agents; the agent reconnects to whichever server is up.
        do {
            while let message = try await messages.next() {
                guard case .text(let text) = message else { continue }
                let decoded: AgentProtocol.AgentMessage
                do throws(AgentProtocol.DecodingError) {
                    decoded = try AgentProtocol.decodeAgentMessage(Array(text.utf8))
                } catch {
                    logger.warning(
                        "agent sent a message that is not valid",
                        metadata: ["machine": "\(machine)", "error": "\(error.description)"])
                    await refuse("protocol", error.description)
                    break
                }
                await broker?.handle(decoded, from: machine, source: source)
            }
        } catch {
            logger.info("agent connection lost", metadata: ["machine": "\(machine)"])
        }
        let removed = links.withLock { links in
            guard links[machine]?.id == link.id else { return false }
            links[machine] = nil
            return true
        }
        if removed {
            try? await replicas.recordDisconnection(of: machine, from: bus.instance, at: Date())
            logger.notice("agent disconnected", metadata: ["machine": "\(machine)"])
            await broker?.agentDisconnected(machine, serverStopping: Task.isShuttingDownGracefully)
        }
    }
}
