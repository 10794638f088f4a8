import Foundation
import NIOCore
import NIOPosix
import ORATestSupport
import Synchronization

/// A syslog collector for tests: accepts TCP connections, splits octet-counted frames (RFC 6587) and keeps every
/// message. It can go away (closing every connection) and come back on the same port.
final class SyslogCollector: Sendable {
    let port: Int
    private let messages = Mutex<[String]>([])
    private let channels = Mutex<[any Channel]>([])

    init() async throws {
        port = try Network.freePort()
        try await start()
    }

    /// Every message received so far, duplicates included.
    var received: [String] { messages.withLock { $0 } }

    /// The `sequence` of every message received, in arrival order.
    var sequences: [Int] {
        received.compactMap { message in
            guard let range = message.range(of: #"sequence=""#) else { return nil }
            return Int(message[range.upperBound...].prefix { $0.isNumber })
        }
    }

    /// Waits until every sequence in `expected` arrived (at most `attempts` × 100 ms).
    func waitFor(_ expected: ClosedRange<Int>, attempts: Int = 600) async throws -> Bool {
        for _ in 0..<attempts {
            if Set(expected).isSubset(of: Set(sequences)) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Closes the listener and every connection.
    func stop() async {
        let open = channels.withLock { channels in
            defer { channels = [] }
            return channels
        }
        for channel in open { try? await channel.close() }
    }

    /// Listens again on the same port.
    func start() async throws {
        _ = try await bind(port: port)
    }

    private func bind(port: Int) async throws {
        let collector = self
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                collector.channels.withLock { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(OctetCountingDecoder()))
                    try channel.pipeline.syncOperations.addHandler(Collecting(collector: collector))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        channels.withLock { $0.append(server) }
    }

    fileprivate func add(_ message: String) {
        messages.withLock { $0.append(message) }
    }

    private final class Collecting: ChannelInboundHandler, Sendable {
        typealias InboundIn = String
        let collector: SyslogCollector
        init(collector: SyslogCollector) { self.collector = collector }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            collector.add(unwrapInboundIn(data))
        }
    }
}

/// `LENGTH SP MESSAGE` frames.
private struct OctetCountingDecoder: ByteToMessageDecoder {
    typealias InboundOut = String

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let space = buffer.readableBytesView.firstIndex(of: UInt8(ascii: " ")) else { return .needMoreData }
        let digits = space - buffer.readerIndex
        guard let text = buffer.getString(at: buffer.readerIndex, length: digits), let length = Int(text) else {
            throw CollectorError.badFrame
        }
        guard buffer.readableBytes >= digits + 1 + length else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: digits + 1)
        context.fireChannelRead(NIOAny(buffer.readString(length: length)!))
        return .continue
    }

    enum CollectorError: Error { case badFrame }
}
