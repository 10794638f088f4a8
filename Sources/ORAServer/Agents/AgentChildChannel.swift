import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import ORACore

/// The server's connections. An agent's connection is recognised by its request line (`GET /agent/v1/connect`) and
/// served by channel handlers alone (`AgentConnectionHandler`), so the thousands of agents that stay connected cost
/// no task each; every other connection is `inner`'s, exactly as if it had come to `inner` directly.
struct AgentAwareChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    /// Whose connection it is, known once its request line is read.
    enum Kind: Sendable {
        /// An agent's connection, served by its handlers.
        case agent
        /// Anything else, served by `inner`.
        case other(Inner.Value)
    }

    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let kind: EventLoopFuture<Kind>
    }

    /// How big each read's buffer is: 512 bytes at first, then as big as the reads before it needed, up to 64 KB.
    static var readBuffers: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536)
    }

    let inner: Inner
    let gateway: AgentGateway
    /// The connections still sending their first request head, per address.
    let openings: OpeningConnections

    /// Adds the sniffer. The channel is registered, and so read, only once this returns, so the decision is a
    /// future of the value rather than a condition for it.
    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // A connection keeps its read buffer for as long as it lives. Thousands of agents send a few hundred
            // bytes at a time, so it starts at 512 bytes instead of NIO's 2 KB and grows for what needs more.
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.readBuffers)
            let promise = channel.eventLoop.makePromise(of: Kind.self)
            // Every connection, an agent's or not, sends its first request head within a limit.
            try channel.pipeline.syncOperations.addHandler(
                OpeningDeadline(.requestHead, within: ServerApplication.requestHeadLimit, connections: openings))
            try channel.pipeline.syncOperations.addHandler(
                AgentRequestSniffer(promise: promise) { channel, isAgent in
                    guard isAgent else { return inner.setup(channel: channel, logger: logger).map(Kind.other) }
                    return channel.eventLoop.makeCompletedFuture {
                        try Self.configureAgentPipeline(channel, gateway: gateway)
                        return .agent
                    }
                })
            return Value(channel: channel, kind: promise.futureResult)
        }
    }

    func handle(value: Value, logger: Logger) async {
        switch try? await value.kind.get() {
        case .other(let value): await inner.handle(value: value, logger: logger)
        case .agent, nil: return
        }
    }

    /// The HTTP request of an agent's connection, upgraded to a WebSocket served by `AgentConnectionHandler`; a
    /// request that is not a WebSocket upgrade gets 400.
    private static func configureAgentPipeline(_ channel: any Channel, gateway: AgentGateway) throws {
        // An agent whose side is closed is gone: no half-closed connections (Hummingbird allows them for HTTP).
        try channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: false)
        let source = channel.remoteAddress?.ipAddress ?? "unknown"
        let connection = NIOLoopBound(
            AgentConnectionHandler(gateway: gateway, source: source, channel: channel), eventLoop: channel.eventLoop)
        let upgrader = NIOTypedWebSocketServerUpgrader<Void>(
            maxFrameSize: AgentProtocol.maximumFrameSize,
            shouldUpgrade: { channel, head in
                let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first
                return channel.eventLoop.makeSucceededFuture(path == AgentGateway.path[...] ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 1024, maxAccumulatedFrameCount: 64,
                            maxAccumulatedFrameSize: AgentProtocol.maximumFrameSize),
                        connection.value)
                }
            })
        let upgrade = NIOTypedHTTPServerUpgradeConfiguration<Void>(
            upgraders: [upgrader],
            notUpgradingCompletionHandler: { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NotAWebSocketHandler())
                }
            })
        let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
            configuration: .init(upgradeConfiguration: upgrade))
        result.whenFailure { _ in channel.close(promise: nil) }
    }
}

/// The first handler of every connection: keeps what arrives until the request line shows whose connection it is,
/// lets `configure` set up the pipeline behind it, passes everything kept on, and leaves. A connection that does
/// not say within 30 seconds is closed.
final class AgentRequestSniffer<Value: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// What an agent's request starts with; the next byte is a space or `?`.
    private static var start: [UInt8] { Array("GET \(AgentGateway.path)".utf8) }

    private let promise: EventLoopPromise<Value>
    private let configure: (_ channel: any Channel, _ isAgent: Bool) -> EventLoopFuture<Value>
    private var received: ByteBuffer?
    private var decided = false
    private var timeout: Scheduled<Void>?

    init(
        promise: EventLoopPromise<Value>,
        configure: @escaping (_ channel: any Channel, _ isAgent: Bool) -> EventLoopFuture<Value>
    ) {
        self.promise = promise
        self.configure = configure
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: .seconds(30)) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        if !decided { promise.fail(ChannelError.eof) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if received == nil {
            received = buffer
        } else {
            received!.writeBuffer(&buffer)
        }
        guard let isAgent = Self.isAgent(received!.readableBytesView) else { return }
        decided = true
        timeout?.cancel()
        let channel = context.channel
        let configured = configure(channel, isAgent)
        configured.whenFailure { _ in channel.close(promise: nil) }
        configured.cascade(to: promise)
        context.fireChannelRead(wrapInboundOut(received!))
        received = nil
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Nothing behind this handler reads until it has decided.
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent, ChannelEvent.inputClosed:
            // Stopping, or the client closed before saying anything.
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Whether `bytes`, the start of a connection, are an agent's request; `nil` while that cannot be told yet.
    static func isAgent(_ bytes: some Collection<UInt8>) -> Bool? {
        let start = Self.start
        guard bytes.starts(with: start.prefix(bytes.count)) else { return false }
        guard bytes.count > start.count else { return nil }
        let next = bytes[bytes.index(bytes.startIndex, offsetBy: start.count)]
        return next == UInt8(ascii: " ") || next == UInt8(ascii: "?")
    }
}

/// Answers a request on the agents' path that is not a WebSocket upgrade with 400, and closes the connection.
private final class NotAWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let body = ByteBuffer(string: "agents connect here with a WebSocket upgrade\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        context.write(
            wrapOutboundOut(.head(.init(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
