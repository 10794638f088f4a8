public import NIOCore
import NIOPosix
public import NIOSSL
public import ORACore

/// The screen relay's own port: plain byte streams (TLS in production), each opened with one line naming the leg
/// and its single-use ticket, answered by one line, then the RFB bytes unframed both ways.
///
///     client: ORA-SCREEN/1 agent|viewer TICKET\n
///     server: ORA-SCREEN/1 ok\n            (or the connection closes: the ticket did not admit)
///
/// Agents always use it for their leg; `ora connect` uses it for native viewers. Browsers cannot open a raw stream,
/// so noVNC's leg is a WebSocket on the HTTP port instead. A replica that carries a leg to the replica that issued
/// its ticket opens it there with `carried` after the ticket; a carried leg is never carried on again.
public enum ScreenStream {
    /// The protocol's name and version, the first word of every line.
    public static let version = "ORA-SCREEN/1"
    /// The longest opening line accepted.
    public static let maximumLineLength = 200
    /// The server's answer when the ticket admitted the leg.
    public static let accepted = "\(version) ok\n"

    /// What a connection's opening line asked for.
    public struct Opening: Sendable, Hashable {
        public var leg: ScreenTickets.Leg
        public var ticket: String
        /// Another replica carries the leg here.
        public var carried: Bool

        public init(leg: ScreenTickets.Leg, ticket: String, carried: Bool = false) {
            self.leg = leg
            self.ticket = ticket
            self.carried = carried
        }
    }

    /// The word after the ticket of a leg that one replica carries to another.
    public static let carriedMark = "carried"

    /// The line a client opens a leg with; `carried` for a replica carrying a leg to another.
    public static func request(leg: ScreenTickets.Leg, ticket: String, carried: Bool = false) -> String {
        "\(version) \(leg.rawValue) \(ticket)\(carried ? " " + carriedMark : "")\n"
    }

    /// The leg and ticket of an opening line (without its newline), and whether another replica carries it; nil
    /// when it is not one.
    public static func parseRequest(_ line: String) -> (leg: ScreenTickets.Leg, ticket: String, carried: Bool)? {
        let words = line.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 3 || (words.count == 4 && words[3] == carriedMark), words[0] == version,
            let leg = ScreenTickets.Leg(rawValue: String(words[1])),
            words[2].utf8.count == 64, words[2].utf8.allSatisfy(Hex.isDigit)
        else { return nil }
        return (leg, String(words[2]), words.count == 4)
    }

    /// An opening line longer than `maximumLineLength`.
    public struct LineTooLong: Error, Hashable, CustomStringConvertible {
        public var description: String { "the opening line is longer than \(ScreenStream.maximumLineLength) bytes" }
    }

    /// Takes one line (without its newline) from the front of `pending`, if it holds a whole one.
    /// - Throws: `LineTooLong` once `pending` holds more than `maximumLineLength` bytes without a newline, or a line
    ///   longer than that (however the bytes were cut into reads).
    public static func takeLine(from pending: inout ByteBuffer) throws(LineTooLong) -> String? {
        guard let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            guard pending.readableBytes <= maximumLineLength else { throw LineTooLong() }
            return nil
        }
        guard newline - pending.readerIndex <= maximumLineLength else { throw LineTooLong() }
        let line = pending.readString(length: newline - pending.readerIndex) ?? ""
        pending.moveReaderIndex(forwardBy: 1)
        return line
    }

    /// Reads one line from `next`.
    /// - Returns: the line without its newline, and the bytes that came after it in the same read.
    /// - Throws: `LineTooLong` for a longer line, `RFBStreamError.truncated` when the stream ends first.
    public static func readLine(
        _ next: () async throws -> ByteBuffer?
    ) async throws -> (line: String, rest: ByteBuffer) {
        var pending = ByteBuffer()
        while true {
            if let line = try takeLine(from: &pending) { return (line, pending) }
            guard var buffer = try await next() else { throw RFBStreamError.truncated }
            pending.writeBuffer(&buffer)
        }
    }

    /// The server did not admit the leg.
    public struct Refused: Error, CustomStringConvertible {
        public var description: String { "the server refused the screen connection" }
    }

    /// Connects to the relay port of `host`, with TLS when `tls` is given (verifying the certificate for `host`: its
    /// name, or for an address the address, which TLS's server name indication cannot carry).
    public static func connect(
        host: String, port: Int, tls: NIOSSLContext?
    ) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let address = (try? SocketAddress(ipAddress: host, port: port)) != nil
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: address ? nil : host))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Opens a `leg` on a connection: sends the opening line and reads the server's answer.
    /// - Returns: the bytes that came after the answer in the same read.
    /// - Throws: `Refused` when the server did not admit the leg, or what reading threw.
    public static func open(
        leg: ScreenTickets.Leg, ticket: String, write: (ByteBuffer) async throws -> Void,
        next: () async throws -> ByteBuffer?
    ) async throws -> ByteBuffer {
        try await write(ByteBuffer(string: request(leg: leg, ticket: ticket)))
        let (answer, rest) = try await readLine(next)
        guard answer + "\n" == accepted else { throw Refused() }
        return rest
    }
}
