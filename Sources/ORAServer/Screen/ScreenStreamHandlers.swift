import NIOCore
import NIOWebSocket
import ORARelay

/// The first handler of every connection on the relay port: reads the opening line (`ScreenStream`), then stops
/// reading until the connection is paired, keeping whatever came after the line. Once paired, `startForwarding`
/// passes the kept bytes and everything after them on to the handler added behind it. A connection that sends no
/// valid line within 10 seconds is closed.
final class ScreenOpeningHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let opened: @Sendable (_ leg: String, _ ticket: String, _ channel: any Channel) -> Void
    private var pending = ByteBuffer()
    private var haveLine = false
    private var forwarding = false
    private var timeout: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(opened: @escaping @Sendable (_ leg: String, _ ticket: String, _ channel: any Channel) -> Void) {
        self.opened = opened
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if forwarding {
            context.fireChannelRead(data)
            return
        }
        var buffer = unwrapInboundIn(data)
        pending.writeBuffer(&buffer)
        guard !haveLine else { return }
        guard let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if pending.readableBytes > ScreenStream.maximumLineLength { context.close(promise: nil) }
            return
        }
        let line = pending.readString(length: newline - pending.readerIndex) ?? ""
        pending.moveReaderIndex(forwardBy: 1)
        guard let (leg, ticket) = ScreenStream.parseRequest(line) else {
            context.close(promise: nil)
            return
        }
        haveLine = true
        timeout?.cancel()
        // Nothing more is read until the connection is paired; what arrives meanwhile stays in the socket.
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        opened(leg, ticket, context.channel)
    }

    /// Passes the kept bytes on, and from now on everything read; reading resumes. On the channel's event loop.
    func startForwarding() {
        guard let context, !forwarding else { return }
        forwarding = true
        if pending.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(pending))
            context.fireChannelReadComplete()
            pending = ByteBuffer()
        }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
    }
}

/// Carries what one channel of a paired screen connection reads to the other, written once per read burst. The
/// viewer's side passes its bytes through `RFBClientStreamFilter` first. Back-pressure counts the bytes written to
/// the other side and not yet handed to its socket: above `pauseAbove` this side stops reading until they fall
/// below `resumeBelow`, so a slow viewer slows the desktop instead of filling the server's memory, wherever the
/// other side's event loop is. When either side closes, so does the other.
final class ScreenGlueHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// What the glue reports, from the event loop.
    struct Hooks: Sendable {
        /// Bytes read on this side.
        var counted: @Sendable (Int) -> Void
        /// Whether the session is still active, and whether control is granted now (viewer side only).
        var state: (@Sendable () -> (active: Bool, control: Bool))?
        /// Input messages dropped while view-only (viewer side only).
        var dropped: @Sendable (Int) -> Void = { _ in }
        /// The viewer broke the RFB protocol.
        var failed: @Sendable (String) -> Void = { _ in }
    }

    static let pauseAbove = 1 << 20
    static let resumeBelow = 256 << 10

    private let partner: any Channel
    private let hooks: Hooks
    private var filter: RFBClientStreamFilter?
    /// Whether the partner is a WebSocket, which takes binary frames rather than bytes.
    private let framed: Bool
    /// What was read in the current burst, written to the partner in one go when the burst ends.
    private var unwritten: ByteBuffer?
    /// Bytes written to the partner that its socket has not taken yet.
    private var pending = 0
    private var paused = false

    init(partner: any Channel, filtering: Bool, framed: Bool = false, hooks: Hooks) {
        self.partner = partner
        self.hooks = hooks
        self.filter = filtering ? RFBClientStreamFilter() : nil
        self.framed = framed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        hooks.counted(buffer.readableBytes)
        if var current = filter {
            let state = hooks.state?() ?? (active: true, control: false)
            guard state.active else {
                context.close(promise: nil)
                return
            }
            current.controlGranted = state.control
            let dropped = current.droppedInputMessages
            do {
                let passed = try current.filter(buffer.readableBytesView)
                if passed.count != buffer.readableBytes { buffer = ByteBuffer(bytes: passed) }
            } catch {
                hooks.failed(error.description)
                context.close(promise: nil)
                return
            }
            if current.droppedInputMessages > dropped { hooks.dropped(current.droppedInputMessages - dropped) }
            filter = current
        }
        guard buffer.readableBytes > 0 else { return }
        if unwritten == nil {
            unwritten = buffer
        } else {
            unwritten!.writeBuffer(&buffer)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let burst = unwritten {
            unwritten = nil
            let size = burst.readableBytes
            pending += size
            let written = partner.eventLoop.makePromise(of: Void.self)
            if framed {
                partner.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: burst), promise: written)
            } else {
                partner.writeAndFlush(burst, promise: written)
            }
            let glue = NIOLoopBound(self, eventLoop: context.eventLoop)
            let channel = context.channel
            written.futureResult.hop(to: context.eventLoop).whenComplete { _ in
                glue.value.taken(size, on: channel)
            }
            if pending > Self.pauseAbove, !paused {
                paused = true
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            }
        }
        context.fireChannelReadComplete()
    }

    /// The partner's socket took `size` bytes: reading resumes once little is left in flight.
    private func taken(_ size: Int, on channel: any Channel) {
        pending -= size
        if paused, pending < Self.resumeBelow {
            paused = false
            channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A viewer that closes inside a message broke its stream, unless the session or the agent ended it.
        if let filter, hooks.state?().active ?? false, partner.isActive, (try? filter.finish()) == nil {
            hooks.failed(RFBStreamError.truncated.description)
        }
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// In a browser viewer's WebSocket pipeline, once paired: when the viewer goes, so does the agent's leg.
final class ScreenViewerClosingHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    private let agent: any Channel

    init(agent: any Channel) {
        self.agent = agent
    }

    func channelInactive(context: ChannelHandlerContext) {
        agent.close(promise: nil)
        context.fireChannelInactive()
    }
}
