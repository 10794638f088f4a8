import NIOCore
import Synchronization

/// Counts, per remote address, the connections that have not yet finished their opening (an HTTP request head, the
/// relay's opening line), and refuses more than `perAddress` of them: a client that opens connections and sends
/// their first bytes slowly cannot hold many of the server's sockets. Connections past their opening do not count,
/// so thousands of agents behind one NAT address are not limited by it.
///
/// The trusted proxies of `listen.behind_proxy` are not limited: every client behind one comes from its address (a
/// proxy passing TCP on, as for the agents' WebSockets or the relay, passes slow openings on as they come), and the
/// proxy bounds its clients itself. The opening's deadline still applies to each of their connections.
final class OpeningConnections: Sendable {
    /// The most connections one address may have in their opening at once.
    let perAddress: Int
    private let proxies: TrustedProxies?
    private let open = Mutex<[String: Int]>([:])

    init(perAddress: Int, proxies: TrustedProxies? = nil) {
        self.perAddress = perAddress
        self.proxies = proxies
    }

    /// Counts a new connection from `address`; `false` when that address has `perAddress` in their opening already.
    func admit(_ address: String) -> Bool {
        if proxies?.contains(address) == true { return true }
        return open.withLock { open in
            guard open[address, default: 0] < perAddress else { return false }
            open[address, default: 0] += 1
            return true
        }
    }

    /// A connection from `address` finished its opening, or closed before it did.
    func release(_ address: String) {
        if proxies?.contains(address) == true { return }
        open.withLock { open in
            open[address, default: 1] -= 1
            if open[address] == 0 { open[address] = nil }
        }
    }

    /// How many connections from `address` are in their opening.
    func count(_ address: String) -> Int {
        open.withLock { $0[address, default: 0] }
    }
}

/// The first handler of a connection: closes it unless its opening — the first HTTP request's head (up to its empty
/// line), or the relay's opening line — has arrived within `limit`, and refuses it at once when its address has too
/// many connections in their opening (`OpeningConnections`). It passes every byte on and leaves once the opening is
/// complete; after that, the HTTP server's idle timeout bounds a slow head of a later request on the connection.
final class OpeningDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Where the opening ends.
    enum Opening {
        /// At the first empty line: an HTTP request head (lines may end in CRLF or LF).
        case requestHead
        /// At the end of the first line.
        case line
    }

    private let opening: Opening
    private let limit: TimeAmount
    private let connections: OpeningConnections
    private var address: String?
    private var timeout: Scheduled<Void>?
    /// The length of the line being read, carriage returns not counted.
    private var lineLength = 0
    /// Whether a line with something on it has been read (empty lines before a request line do not end its head).
    private var sawLine = false
    /// Whether the connection was answered and is closing: what else it sends is dropped.
    private var refused = false

    init(_ opening: Opening, within limit: TimeAmount, connections: OpeningConnections) {
        self.opening = opening
        self.limit = limit
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        guard connections.admit(address) else {
            context.close(promise: nil)
            return
        }
        self.address = address
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let bytes = unwrapInboundIn(data).readableBytesView
        // A TLS handshake (its first record is of type 22) to a port that speaks plain HTTP: answered at once, in
        // plain HTTP, so that the client fails now and can say why, instead of waiting for a head that never comes.
        if opening == .requestHead, !sawLine, lineLength == 0, bytes.first == 0x16 {
            let body = "This port speaks plain HTTP, not TLS.\n"
            let answer =
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body
            finish()
            refused = true
            // Only our side is closed at first: closing while the rest of the handshake is still unread would reset
            // the connection, and the client might lose the answer. What else arrives is dropped (`refused`); the
            // client closes once it has read the answer, or the connection is closed 5 seconds later.
            let channel = context.channel
            context.writeAndFlush(NIOAny(ByteBuffer(string: answer))).whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
            }
            return
        }
        let complete = isComplete(after: bytes)
        context.fireChannelRead(data)
        if complete {
            finish()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    /// Reads `bytes` on from where the last read stopped; `true` once the opening is complete.
    private func isComplete(after bytes: ByteBufferView) -> Bool {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n"):
                if opening == .line || (lineLength == 0 && sawLine) { return true }
                sawLine = sawLine || lineLength > 0
                lineLength = 0
            case UInt8(ascii: "\r"):
                continue
            default:
                lineLength += 1
            }
        }
        return false
    }

    /// Stops the clock and no longer counts the connection as opening; once.
    private func finish() {
        timeout?.cancel()
        timeout = nil
        if let address {
            connections.release(address)
            self.address = nil
        }
    }
}
