public import NIOCore
public import NIOWebSocket
public import ORACore

/// The first handler of every connection on the relay port: reads the opening line (`ScreenStream`), then stops
/// reading until the connection is paired, keeping whatever came after the line. Once paired, `startForwarding`
/// passes the kept bytes and everything after them on to the handler added behind it. A connection that sends no
/// valid line within 10 seconds is closed.
///
/// A server that opens a leg on another server's relay port (carrying a viewer to the replica that holds the
/// machine's agent) uses it the other way round, `init(answered:)`: it reads that server's answer instead.
public final class ScreenOpeningHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let opened: (@Sendable (_ opening: ScreenStream.Opening, _ channel: any Channel) -> Void)?
    /// Succeeded when the other server admitted the leg, failed with `ScreenStream.Refused` when it did not.
    private var answered: EventLoopPromise<Void>?
    private var pending = ByteBuffer()
    private var haveLine = false
    private var forwarding = false
    private var timeout: Scheduled<Void>?
    /// How long the opening line (or the answer to it) may take.
    private let within: TimeAmount
    private var context: ChannelHandlerContext?

    public init(opened: @escaping @Sendable (_ opening: ScreenStream.Opening, _ channel: any Channel) -> Void) {
        self.opened = opened
        within = .seconds(10)
    }

    /// Reads the answer of another server's relay port to the opening line sent on this connection, and completes
    /// `answered` with it: the connection closing first, an answer other than `ScreenStream.accepted`, or none
    /// `within` that time, fail it. (A server answers a viewer once the agent's leg has come, which may take it a
    /// while.)
    public init(answered: EventLoopPromise<Void>, within: TimeAmount) {
        opened = nil
        self.answered = answered
        self.within = within
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: within) { channel.close(promise: nil) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        self.context = nil
        answered?.fail(ScreenStream.Refused())
        answered = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        answered?.fail(ScreenStream.Refused())
        answered = nil
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let answered {
            self.answered = nil
            answered.fail(error)
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if forwarding {
            context.fireChannelRead(data)
            return
        }
        var buffer = unwrapInboundIn(data)
        pending.writeBuffer(&buffer)
        guard !haveLine else { return }
        let line: String
        do throws(ScreenStream.LineTooLong) {
            guard let taken = try ScreenStream.takeLine(from: &pending) else { return }
            line = taken
        } catch {
            context.close(promise: nil)
            return
        }
        if let answered {
            self.answered = nil
            guard line + "\n" == ScreenStream.accepted else {
                answered.fail(ScreenStream.Refused())
                context.close(promise: nil)
                return
            }
            haveLine = true
            timeout?.cancel()
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            answered.succeed()
            return
        }
        guard let opened, let (leg, ticket, carried) = ScreenStream.parseRequest(line) else {
            context.close(promise: nil)
            return
        }
        haveLine = true
        timeout?.cancel()
        // Nothing more is read until the connection is paired; what arrives meanwhile stays in the socket.
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        opened(ScreenStream.Opening(leg: leg, ticket: ticket, carried: carried), context.channel)
    }

    /// Passes the kept bytes on, and from now on everything read; reading resumes. On the channel's event loop.
    public func startForwarding() {
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

/// What the glue of a screen connection reports, from the event loop.
public struct ScreenGlueHooks: Sendable {
    /// Bytes read on this side.
    public var counted: @Sendable (Int) -> Void
    /// Whether the session is still active, and whether control is granted now (viewer side only).
    public var state: (@Sendable () -> (active: Bool, control: Bool))?
    /// Input messages dropped while view-only (viewer side only).
    public var dropped: @Sendable (Int) -> Void = { _ in }
    /// The viewer broke the RFB protocol.
    public var failed: @Sendable (String) -> Void = { _ in }

    /// Creates the hooks; `state`, `dropped` and `failed` concern the viewer's side only.
    public init(
        counted: @escaping @Sendable (Int) -> Void,
        state: (@Sendable () -> (active: Bool, control: Bool))? = nil,
        dropped: @escaping @Sendable (Int) -> Void = { _ in },
        failed: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.counted = counted
        self.state = state
        self.dropped = dropped
        self.failed = failed
    }
}

/// Carries what one side of a paired screen connection reads to the other, written once per read burst. The
/// viewer's side passes its bytes through `RFBClientStreamFilter` first. Back-pressure counts the bytes written to
/// the other side and not yet handed to its socket: above `pauseAbove` this side stops reading until they fall
/// below `resumeBelow`, so a slow viewer slows the desktop instead of filling the server's memory, wherever the
/// other side's event loop is. Used on this side's event loop only.
public final class ScreenForwarder {
    static let pauseAbove = 1 << 20
    static let resumeBelow = 256 << 10

    let partner: any Channel
    private let hooks: ScreenGlueHooks
    private var filter: RFBClientStreamFilter?
    /// Whether the partner is a WebSocket, which takes binary frames rather than bytes.
    private let framed: Bool
    private var unwritten: ByteBuffer?
    private var pending = 0
    private var paused = false

    init(partner: any Channel, filtering: Bool, framed: Bool, hooks: ScreenGlueHooks) {
        self.partner = partner
        self.hooks = hooks
        self.filter = filtering ? RFBClientStreamFilter() : nil
        self.framed = framed
    }

    /// Takes bytes read on this side.
    /// - Returns: nil to go on, or why the connection must close (`""` when the session is over).
    func read(_ input: ByteBuffer) -> String? {
        var buffer = input
        hooks.counted(buffer.readableBytes)
        if var current = filter {
            let state = hooks.state?() ?? (active: true, control: false)
            guard state.active else { return "" }
            current.controlGranted = state.control
            let dropped = current.droppedInputMessages
            do {
                let passed = try current.filter(buffer.readableBytesView)
                if passed.count != buffer.readableBytes { buffer = ByteBuffer(bytes: passed) }
            } catch {
                hooks.failed(error.description)
                return error.description
            }
            if current.droppedInputMessages > dropped { hooks.dropped(current.droppedInputMessages - dropped) }
            filter = current
        }
        guard buffer.readableBytes > 0 else { return nil }
        if unwritten == nil {
            unwritten = buffer
        } else {
            unwritten!.writeBuffer(&buffer)
        }
        return nil
    }

    /// A read burst ended: what it brought goes to the partner.
    func flush(on channel: any Channel) {
        guard let burst = unwritten else { return }
        unwritten = nil
        let size = burst.readableBytes
        pending += size
        let written = partner.eventLoop.makePromise(of: Void.self)
        if framed {
            partner.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: burst), promise: written)
        } else {
            partner.writeAndFlush(burst, promise: written)
        }
        let forwarder = NIOLoopBound(self, eventLoop: channel.eventLoop)
        written.futureResult.hop(to: channel.eventLoop).whenComplete { _ in
            forwarder.value.taken(size, on: channel)
        }
        if pending > Self.pauseAbove, !paused {
            paused = true
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
    }

    /// The partner's socket took `size` bytes: reading resumes once little is left in flight.
    private func taken(_ size: Int, on channel: any Channel) {
        pending -= size
        if paused, pending < Self.resumeBelow {
            paused = false
            channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    /// This side's stream ended: a viewer that stops inside a message broke its stream, unless the session or the
    /// agent ended it.
    func checkEnd() {
        if let filter, hooks.state?().active ?? false, partner.isActive, (try? filter.finish()) == nil {
            self.filter = nil
            hooks.failed(RFBStreamError.truncated.description)
        }
    }
}

/// Joins one side of a paired screen connection (a stream on the relay port) to the other, through a
/// `ScreenForwarder`; when either side closes, so does the other.
public final class ScreenGlueHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer

    private let forwarder: ScreenForwarder

    public init(partner: any Channel, filtering: Bool, framed: Bool = false, hooks: ScreenGlueHooks) {
        forwarder = ScreenForwarder(partner: partner, filtering: filtering, framed: framed, hooks: hooks)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if forwarder.read(unwrapInboundIn(data)) != nil { context.close(promise: nil) }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        forwarder.flush(on: context.channel)
        context.fireChannelReadComplete()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        forwarder.checkEnd()
        forwarder.partner.close(promise: nil)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A browser viewer's side of a paired screen connection, in its WebSocket pipeline right after the frame decoder:
/// binary frames are unmasked, filtered and written to the agent's leg from the event loop (`ScreenForwarder`);
/// control frames go on to the WebSocket handler. Frames that reached the WebSocket handler before this handler was
/// added come back through `early(_:)`, in order: this handler sends a marker frame after them and holds what it
/// reads itself until the marker has come round (`go()`). A viewer that breaks the RFB protocol gets a close frame
/// with 1002 (protocol error); when the viewer goes, so does the agent's leg.
public final class ScreenViewerInputHandler: ChannelInboundHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias InboundOut = WebSocketFrame

    private let forwarder: ScreenForwarder
    private let marker: ByteBuffer
    private var held: [ByteBuffer] = []
    private var going = false
    private var closing = false
    private var context: ChannelHandlerContext?

    /// - Parameter filtering: false only where another server filters this viewer's input: the replica that holds
    ///   the machine's agent, to which this server carries the viewer.
    public init(agent: any Channel, hooks: ScreenGlueHooks, marker: ByteBuffer, filtering: Bool = true) {
        forwarder = ScreenForwarder(partner: agent, filtering: filtering, framed: false, hooks: hooks)
        self.marker = marker
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Behind every frame the WebSocket handler already has, so `next()` returns it after them.
        context.fireChannelRead(wrapInboundOut(WebSocketFrame(fin: true, opcode: .binary, data: marker)))
        context.fireChannelReadComplete()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.opcode == .binary || frame.opcode == .continuation else {
            if frame.opcode == .connectionClose { forwarder.checkEnd() }
            context.fireChannelRead(data)
            return
        }
        if going {
            take(frame.unmaskedData, context: context)
        } else {
            held.append(frame.unmaskedData)
        }
    }

    /// A frame that reached the WebSocket handler before this one was added.
    public func early(_ buffer: ByteBuffer) {
        guard let context, !going else { return }
        take(buffer, context: context)
        forwarder.flush(on: context.channel)
    }

    /// The marker came round: what was held goes now, and every frame from now on as it comes.
    public func go() {
        guard let context, !going else { return }
        going = true
        for buffer in held { take(buffer, context: context) }
        held = []
        forwarder.flush(on: context.channel)
    }

    private func take(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard !closing, let reason = forwarder.read(buffer) else { return }
        closing = true
        guard !reason.isEmpty else {
            context.close(promise: nil)
            return
        }
        var code = context.channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: .protocolError)
        let channel = context.channel
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if going { forwarder.flush(on: context.channel) }
        context.fireChannelReadComplete()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        forwarder.checkEnd()
        forwarder.partner.close(promise: nil)
        context.fireChannelInactive()
    }
}
