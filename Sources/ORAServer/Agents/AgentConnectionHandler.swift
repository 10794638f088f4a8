import Foundation
import Logging
import NIOCore
import NIOWebSocket
import ORACore
import Synchronization

/// One agent's WebSocket, on its channel's event loop: the handshake (hello, a challenge, the answer signed with
/// the device key), then the agent's messages, handed to the gateway in the order they came. The connection is
/// pinged every `agents.ping_interval` (30 seconds) and closed when a ping goes unanswered until the next one.
/// Nothing here waits: the machine is looked up and the messages are handled in tasks that exist only while there
/// is work, so an idle agent costs its channel and this handler.
final class AgentConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Asks the handler to close the connection with a close frame; sent through the pipeline from anywhere.
    struct Close: Sendable {
        var code: WebSocketErrorCode
        var reason: String
    }

    private enum Phase {
        case awaitingHello
        case lookingUp
        case awaitingAnswer(name: String, enrolled: MachineRecord, nonce: String, version: String, system: String)
        case connected(machine: String, inbox: AgentInbox)
        case closed
    }

    /// What the handshake needs of an enrolled machine.
    struct MachineRecord: Sendable {
        var name: String
        /// The enrolled device key, as stored.
        var publicKey: String
    }

    private let gateway: AgentGateway
    private let source: String
    private var phase = Phase.awaitingHello
    private var handshakeTimeout: Scheduled<Void>?
    private var pinger: RepeatedTask?
    /// Whether the agent answered the last ping.
    private var heard = true
    /// Whether this side sent its close frame; nothing the agent sends after it is handled.
    private var closeSent = false
    private var serverStopping = false
    private var context: ChannelHandlerContext?

    /// Creates the handler when the connection's request line is read; the handshake's 10 seconds start now.
    init(gateway: AgentGateway, source: String, channel: any Channel) {
        self.gateway = gateway
        self.source = source
        handshakeTimeout = channel.eventLoop.scheduleTask(in: AgentGateway.handshakeTimeout) {
            channel.pipeline.fireUserInboundEventTriggered(
                Close(code: .policyViolation, reason: "the handshake took too long"))
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let channel = context.channel
        pinger = context.eventLoop.scheduleRepeatedTask(
            initialDelay: gateway.pingInterval, delay: gateway.pingInterval
        ) { _ in
            channel.pipeline.fireUserInboundEventTriggered(Ping())
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        pinger?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        pinger?.cancel()
        if case .connected(let machine, let inbox) = phase {
            gateway.deliver(.disconnected(serverStopping: serverStopping), from: machine, inbox: inbox, source: source)
        }
        phase = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context, code: .protocolError, reason: "the connection broke the WebSocket protocol")
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let request as Close:
            close(context, code: request.code, reason: request.reason)
        case is Ping:
            guard case .connected = phase else { return }
            // An agent that does not read cannot answer; one whose writes pile up is not reading either.
            guard heard, context.channel.isWritable else {
                close(context, code: .goingAway, reason: "no answer to the last ping")
                return
            }
            heard = false
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
        case is ChannelShouldQuiesceEvent:
            // The server is stopping: the agent reconnects to whichever server is up.
            serverStopping = true
            close(context, code: .goingAway, reason: "the server is stopping")
        case ChannelEvent.inputClosed:
            // The agent's side is gone (its process ended, its machine shut down): nothing more can come.
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            received(frame.unmaskedData, context: context)
        case .ping:
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            guard closeSent else {
                // The agent closes: its code goes back (one that may be sent), and the connection ends.
                var data = frame.unmaskedData
                var code = data.readWebSocketErrorCode() ?? .normalClosure
                if [1005, 1006, 1015].contains(UInt16(webSocketErrorCode: code)) { code = .normalClosure }
                close(context, code: code, reason: "")
                context.close(promise: nil)
                return
            }
            context.close(promise: nil)
        case .pong:
            heard = true
        default:
            // Binary frames are not part of the protocol and are ignored.
            break
        }
    }

    // MARK: The conversation

    private func received(_ text: ByteBuffer, context: ChannelHandlerContext) {
        guard !closeSent else { return }
        let message: AgentProtocol.AgentMessage
        do throws(AgentProtocol.DecodingError) {
            message = try AgentProtocol.decodeAgentMessage(text.readableBytesView)
        } catch {
            if case .connected(let machine, _) = phase {
                gateway.logger.warning(
                    "agent sent a message that is not valid",
                    metadata: ["machine": "\(machine)", "error": "\(error.description)"])
                refuse(context, "protocol", error.description)
            } else {
                refuse(context, "protocol", "the handshake failed")
            }
            return
        }
        switch phase {
        case .awaitingHello:
            guard case .hello(let name, let version, let system) = message else {
                refuse(context, "protocol", "the first message must be hello")
                return
            }
            phase = .lookingUp
            lookUp(name, version: version, system: system, context: context)
        case .lookingUp:
            refuse(context, "protocol", "the handshake failed")
        case .awaitingAnswer(let name, let enrolled, let nonce, let version, let system):
            guard case .authenticate(let signature) = message else {
                refuse(context, "protocol", "the second message must be authenticate")
                return
            }
            guard gateway.isAuthentic(signature, machine: name, nonce: nonce, publicKey: enrolled.publicKey) else {
                refuse(context, "authentication_failed", "the answer is not signed with the enrolled device key")
                return
            }
            handshakeTimeout?.cancel()
            handshakeTimeout = nil
            write(.welcome(machine: enrolled.name), context: context)
            gateway.logger.notice(
                "agent connected",
                metadata: [
                    "machine": "\(enrolled.name)", "source": "\(source)",
                    "agent.version": "\(AuditText.escaped(version))", "os": "\(AuditText.escaped(system))",
                ])
            let inbox = AgentInbox()
            phase = .connected(machine: enrolled.name, inbox: inbox)
            gateway.connected(enrolled.name, channel: context.channel, inbox: inbox, source: source)
        case .connected(let machine, let inbox):
            guard gateway.deliver(.message(message), from: machine, inbox: inbox, source: source) else {
                gateway.logger.warning(
                    "agent sent more messages than it may have waiting", metadata: ["machine": "\(machine)"])
                close(context, code: .policyViolation, reason: "too many messages at once")
                return
            }
        case .closed:
            break
        }
    }

    /// Looks the machine up in a task, then answers with a challenge or a refusal on the event loop.
    private func lookUp(_ name: String, version: String, system: String, context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let gateway = self.gateway
        Task {
            let outcome = await gateway.enrolledMachine(name)
            handler.eventLoop.execute {
                let handler = handler.value
                guard let context = handler.context, !handler.closeSent, case .lookingUp = handler.phase else {
                    return
                }
                switch outcome {
                case .enrolled(let record):
                    let nonce = AgentAuthentication.makeNonce()
                    handler.phase = .awaitingAnswer(
                        name: name, enrolled: record, nonce: nonce, version: version, system: system)
                    handler.write(.challenge(nonce: nonce), context: context)
                case .refused(let code, let text):
                    handler.refuse(context, code, text)
                }
            }
        }
    }

    private func write(_ message: AgentProtocol.ServerMessage, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(Self.frame(message)), promise: nil)
    }

    /// Tells the agent why it is refused, and closes the connection.
    private func refuse(_ context: ChannelHandlerContext, _ code: String, _ text: String) {
        guard !closeSent else { return }
        gateway.logger.warning("agent refused", metadata: ["source": "\(source)", "reason": "\(code)"])
        write(.error(code: code, message: text), context: context)
        close(context, code: .policyViolation, reason: code)
    }

    /// Sends a close frame; the connection is closed when the agent's close frame comes back, or after 2 seconds
    /// (an agent that does not answer, or stopped reading).
    private func close(_ context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        guard !closeSent else { return }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let channel = context.channel
        context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
    }

    /// A server message as one text frame.
    static func frame(_ message: AgentProtocol.ServerMessage) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: AgentProtocol.encode(message)))
    }

    /// Sent by the repeating timer to the handler.
    private struct Ping: Sendable {}
}

/// What one agent's connection has for the gateway, in order: its start, its messages and its end. A task drains
/// it while there is something in it, and ends when it is empty.
final class AgentInbox: Sendable {
    enum Item: Sendable {
        case connected
        case message(AgentProtocol.AgentMessage)
        case disconnected(serverStopping: Bool)
    }

    /// What `push` did.
    enum Pushed {
        /// Queued, and the caller has to start draining.
        case drain
        /// Queued behind others that are being handled.
        case queued
        /// Refused: the agent's messages waiting already reach `limit`.
        case full
    }

    /// How many of an agent's messages may wait; an agent has little to say, so more means it floods.
    static let limit = 64

    private let state = Mutex<(items: [Item], draining: Bool)>(([], false))

    /// Adds `item`; a message only while fewer than `limit` wait (the connection's start and end always).
    func push(_ item: Item) -> Pushed {
        state.withLock { state in
            if case .message = item, state.items.count >= Self.limit { return .full }
            state.items.append(item)
            guard !state.draining else { return .queued }
            state.draining = true
            return .drain
        }
    }

    /// The next item, or `nil` (and draining stops) when there is none.
    func next() -> Item? {
        state.withLock { state in
            guard !state.items.isEmpty else {
                state.draining = false
                return nil
            }
            return state.items.removeFirst()
        }
    }
}
