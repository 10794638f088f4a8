import Foundation
import Logging
import NIOCore
import NIOWebSocket
import ORACore
import Synchronization

/// One agent's WebSocket, on its channel's event loop: the handshake (hello, a challenge, the answer signed with
/// the device key), then the agent's messages, handed to the gateway in the order they came. The connection is
/// pinged every `agents.ping_interval` (30 seconds), from the welcome on, by its event loop's `AgentPingRound`, and
/// closed when a ping goes unanswered until the next one.
/// Nothing here waits: the machine is looked up and the messages are handled in tasks that exist only while there
/// is work, so an idle agent costs its channel and this handler.
final class AgentConnectionHandler: ChannelInboundHandler, AgentPinged {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Asks the handler to close the connection with a close frame; sent through the pipeline from anywhere.
    struct Close: Sendable {
        var code: WebSocketErrorCode
        var reason: String
    }

    private let gateway: AgentGateway
    private let source: String
    /// The conversation: what the agent's messages mean, and what answers them.
    private var handshake: AgentHandshake
    /// The authenticated agent's machine and its messages for the gateway, from the welcome until the connection
    /// is gone (however the conversation ended).
    private var connected: (machine: String, inbox: AgentInbox)?
    private var handshakeTimeout: Scheduled<Void>?
    /// The round that pings the connection once it is welcomed, and its slot there.
    private var pings: (round: AgentPingRound, slot: Int)?
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
        handshake = AgentHandshake(serverNames: gateway.serverNames)
        handshakeTimeout = channel.eventLoop.scheduleTask(in: AgentGateway.handshakeTimeout) {
            channel.pipeline.fireUserInboundEventTriggered(
                Close(code: .policyViolation, reason: "the handshake took too long"))
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        stopPinging()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        stopPinging()
        if let (machine, inbox) = connected {
            gateway.deliver(.disconnected(serverStopping: serverStopping), from: machine, inbox: inbox, source: source)
        }
        handshake.close()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context, code: .protocolError, reason: "the connection broke the WebSocket protocol")
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let request as Close:
            close(context, code: request.code, reason: request.reason)
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

    // MARK: Pings

    func pingDue() {
        guard let context, !closeSent else { return }
        // An agent that does not read cannot answer; one whose writes pile up is not reading either.
        guard heard, context.channel.isWritable else {
            close(context, code: .goingAway, reason: "no answer to the last ping")
            return
        }
        heard = false
        context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
    }

    private func stopPinging() {
        guard let (round, slot) = pings else { return }
        round.leave(self, slot: slot)
        pings = nil
    }

    // MARK: The conversation

    private func received(_ text: ByteBuffer, context: ChannelHandlerContext) {
        guard !closeSent else { return }
        let message: Result<AgentProtocol.AgentMessage, AgentProtocol.DecodingError>
        do throws(AgentProtocol.DecodingError) {
            message = .success(try AgentProtocol.decodeAgentMessage(text.readableBytesView))
        } catch {
            if case .connected(let machine) = handshake.phase {
                gateway.logger.warning(
                    "agent sent a message that is not valid",
                    metadata: ["machine": "\(machine)", "error": "\(error.description)"])
            }
            message = .failure(error)
        }
        perform(handshake.received(message), context: context)
    }

    /// Does what the conversation says.
    private func perform(_ action: AgentHandshake.Action, context: ChannelHandlerContext) {
        switch action {
        case .lookUp(let machine):
            lookUp(machine, context: context)
        case .challenge(let nonce):
            write(.challenge(nonce: nonce), context: context)
        case .welcome(let machine, let publicKey, let version, let system):
            handshakeTimeout?.cancel()
            handshakeTimeout = nil
            write(.welcome(machine: machine), context: context)
            gateway.logger.notice(
                "agent connected",
                metadata: [
                    "machine": "\(machine)", "source": "\(source)",
                    "agent.version": "\(AuditText.escaped(version))", "os": "\(AuditText.escaped(system))",
                ])
            let inbox = AgentInbox()
            connected = (machine, inbox)
            let round = gateway.pings.round(on: context.eventLoop)
            pings = (round, round.join(self))
            gateway.connected(
                machine, publicKey: publicKey, channel: context.channel, inbox: inbox, source: source)
        case .deliver(let message):
            guard let (machine, inbox) = connected else { return }
            guard gateway.deliver(.message(message), from: machine, inbox: inbox, source: source) else {
                gateway.logger.warning(
                    "agent sent more messages than it may have waiting", metadata: ["machine": "\(machine)"])
                close(context, code: .policyViolation, reason: "too many messages at once")
                return
            }
        case .refuse(let code, let text):
            refuse(context, code, text)
        case .nothing:
            break
        }
    }

    /// Looks the machine up in a task, then goes on with what was found on the event loop.
    private func lookUp(_ name: String, context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let gateway = self.gateway
        Task {
            let found = await gateway.enrolledMachine(name)
            handler.eventLoop.execute {
                let handler = handler.value
                guard let context = handler.context, !handler.closeSent else { return }
                handler.perform(
                    handler.handshake.lookedUp(found, nonce: AgentAuthentication.makeNonce()), context: context)
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
