import NIOCore

/// One reply of an SMTP server: its code and its lines (a multi-line reply has several).
struct SMTPReply: Sendable, Hashable {
    var code: Int
    var lines: [String]
    /// Whether more bytes had come after it when it was read: after `STARTTLS` nothing may (they would be read as
    /// if they had come over TLS).
    var followedByMore = false

    /// The lines, joined for a message.
    var text: String { lines.joined(separator: " ") }
}

/// Reads SMTP replies (RFC 5321 section 4.2): lines `250-…` continue a reply, `250 …` ends it. A server that sends
/// over-long lines, too many of them or something that is not a reply is refused.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply

    /// The longest line read (RFC 5321 allows 512 bytes; some servers write longer texts).
    static let longestLine = 2048
    /// The most lines of one reply.
    static let mostLines = 100

    private var lines: [String] = []

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            guard buffer.readableBytes <= Self.longestLine else {
                throw MailError.protocolViolation("a reply line longer than \(Self.longestLine) bytes")
            }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex + 1
        guard length <= Self.longestLine + 1, var bytes = buffer.readBytes(length: length) else {
            throw MailError.protocolViolation("a reply line longer than \(Self.longestLine) bytes")
        }
        bytes.removeLast()
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        let line = String(decoding: bytes, as: UTF8.self)
        let digits = line.utf8.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let code = Int(line.prefix(3)),
            (200...599).contains(code)
        else {
            throw MailError.protocolViolation("a reply that does not start with a code: \(MailError.shortened(line))")
        }
        let separator = line.utf8.dropFirst(3).first
        lines.append(String(line.dropFirst(4)))
        guard lines.count <= Self.mostLines else {
            throw MailError.protocolViolation("a reply of more than \(Self.mostLines) lines")
        }
        if separator == UInt8(ascii: "-") { return .continue }
        let reply = SMTPReply(code: code, lines: lines, followedByMore: buffer.readableBytes > 0)
        lines = []
        context.fireChannelRead(wrapInboundOut(reply))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Passes each reply on to the conversation, and the end of the connection (or the error that ended it) after the
/// last.
final class SMTPReplyHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = SMTPReply

    private let replies: AsyncThrowingStream<SMTPReply, any Error>.Continuation

    init(_ replies: AsyncThrowingStream<SMTPReply, any Error>.Continuation) {
        self.replies = replies
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        replies.yield(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        replies.finish(throwing: error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        replies.finish()
        context.fireChannelInactive()
    }
}
