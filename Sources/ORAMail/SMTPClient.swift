import Foundation
public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL
import Synchronization

/// Sends mail through one SMTP server (RFC 5321), with STARTTLS (RFC 3207) and a verified certificate unless the
/// settings say otherwise, and `AUTH PLAIN` (RFC 4954) only over TLS. One connection per message: ora sends few.
public struct SMTPClient: Sendable {
    private let settings: SMTPSettings
    private let group: any EventLoopGroup
    private let logger: Logger

    /// Creates a client.
    public init(
        settings: SMTPSettings, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.settings = settings
        self.group = group
        self.logger = logger
    }

    /// Sends `message` to its recipient.
    /// - Throws: `MailError` saying what failed, and at which step.
    public func send(_ message: MailMessage) async throws(MailError) {
        let tls: NIOSSLContext?
        do {
            tls = settings.security == .startTLS ? try Self.tlsContext(settings) : nil
        } catch {
            throw .tls("the CA file \(settings.caFile ?? "") cannot be used: \(error)")
        }
        let (replies, continuation) = AsyncThrowingStream<SMTPReply, any Error>.makeStream()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(Int64(min(settings.timeout, .seconds(10)).components.seconds)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                        try channel.pipeline.syncOperations.addHandler(SMTPReplyHandler(continuation))
                    }
                }
                .connect(host: settings.host, port: settings.port).get()
        } catch {
            throw .unreachable(host: settings.host, port: settings.port, reason: Self.reason(error))
        }
        let conversation = Conversation(
            channel: channel, replies: replies.makeAsyncIterator(), timeout: settings.timeout)
        defer { channel.close(promise: nil) }
        try await conversation.run(message, settings: settings, tls: tls)
        logger.info(
            "mail sent",
            metadata: ["mail.server": "\(settings.host):\(settings.port)", "mail.message_id": "\(message.messageID)"])
    }

    private static func tlsContext(_ settings: SMTPSettings) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile { configuration.trustRoots = .file(caFile) }
        if !settings.verifyCertificates { configuration.certificateVerification = .none }
        return try NIOSSLContext(configuration: configuration)
    }

    /// A line starting with a dot gets another (RFC 5321 section 4.5.2), so that none ends the message early.
    static func dotStuffed(_ text: String) -> String {
        text.split(separator: "\r\n", omittingEmptySubsequences: false).map { $0.hasPrefix(".") ? "." + $0 : $0 }
            .joined(separator: "\r\n")
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? MailError { return error.description }
        if let error = error as? IOError { return error.description }
        if error is ChannelError { return "the connection failed (\(error))" }
        return String(describing: error)
    }
}

/// One message's conversation with the SMTP server, step by step; the whole of it within `timeout`.
private final class Conversation {
    private let channel: any Channel
    private var replies: AsyncThrowingStream<SMTPReply, any Error>.AsyncIterator
    /// Set when the time ran out (and the connection was closed for it).
    private let flag = Flag()
    private let deadline: Scheduled<Void>

    init(channel: any Channel, replies: AsyncThrowingStream<SMTPReply, any Error>.AsyncIterator, timeout: Duration) {
        self.channel = channel
        self.replies = replies
        let flag = flag
        deadline = channel.eventLoop.scheduleTask(in: .seconds(timeout.components.seconds)) {
            flag.set()
            channel.close(promise: nil)
        }
    }

    deinit { deadline.cancel() }

    func run(_ message: MailMessage, settings: SMTPSettings, tls: NIOSSLContext?) async throws(MailError) {
        try await expect(200...299, during: "its greeting")
        var extensions = try await command("EHLO \(settings.helloName)", expect: 250...250, during: "EHLO")
        if let tls {
            guard extensions.lines.dropFirst().contains(where: { Self.keyword($0) == "STARTTLS" }) else {
                throw .noStartTLS(host: settings.host)
            }
            let ready = try await command("STARTTLS", expect: 220...220, during: "STARTTLS")
            guard !ready.followedByMore else {
                throw .protocolViolation("it sent more than its answer to STARTTLS before TLS began")
            }
            let hostname = settings.verifyCertificates && !Self.isAddress(settings.host) ? settings.host : nil
            do {
                try await channel.eventLoop.submit { [channel] in
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: hostname), position: .first)
                }.get()
            } catch {
                throw .tls(SMTPClient.reason(error))
            }
            extensions = try await command("EHLO \(settings.helloName)", expect: 250...250, during: "EHLO over TLS")
        }
        if let username = settings.username {
            guard tls != nil else { throw .protocolViolation("a password is never sent without TLS") }
            guard
                extensions.lines.dropFirst().contains(where: {
                    Self.keyword($0) == "AUTH" && $0.uppercased().contains("PLAIN")
                })
            else { throw .refused(step: "logging in", code: 0, text: "it does not offer AUTH PLAIN") }
            let credentials = Data(([0] + Array(username.utf8) + [0] + Array((settings.password ?? "").utf8)))
            try await command(
                "AUTH PLAIN " + credentials.base64EncodedString(), expect: 235...235,
                during: "logging in as \(username)")
        }
        try await command("MAIL FROM:<\(message.from)>", expect: 250...250, during: "the sender <\(message.from)>")
        try await command("RCPT TO:<\(message.to)>", expect: 250...251, during: "the recipient <\(message.to)>")
        try await command("DATA", expect: 354...354, during: "the message")
        let boundary = "ora-" + UUID().uuidString.lowercased()
        try await write(SMTPClient.dotStuffed(message.rendered(boundary: boundary)) + ".\r\n")
        try await expect(250...250, during: "the message")
        // The message is accepted; a server that does not say goodbye changes nothing.
        _ = try? await command("QUIT", expect: 200...299, during: "QUIT")
    }

    /// Sends `line` and waits for the reply.
    @discardableResult
    private func command(
        _ line: String, expect codes: ClosedRange<Int>, during step: String
    ) async throws(MailError) -> SMTPReply {
        try await write(line + "\r\n")
        return try await expect(codes, during: step)
    }

    @discardableResult
    private func expect(_ codes: ClosedRange<Int>, during step: String) async throws(MailError) -> SMTPReply {
        let reply: SMTPReply?
        do {
            reply = try await replies.next()
        } catch let error as MailError {
            throw error
        } catch {
            throw flag.isSet ? .timedOut(step: step) : Self.failure(error, during: step)
        }
        guard let reply else { throw flag.isSet ? .timedOut(step: step) : .closed(step: step) }
        guard codes.contains(reply.code) else { throw .refused(step: step, code: reply.code, text: reply.text) }
        return reply
    }

    private func write(_ text: String) async throws(MailError) {
        do {
            try await channel.writeAndFlush(ByteBuffer(string: text))
        } catch {
            if flag.isSet { throw .timedOut(step: "writing") }
            // Why the connection ended (a failed TLS handshake, say) was passed to the replies.
            do {
                _ = try await replies.next()
            } catch let error as MailError {
                throw error
            } catch {
                throw Self.failure(error, during: "writing")
            }
            throw .closed(step: "writing")
        }
    }

    private static func failure(_ error: any Error, during step: String) -> MailError {
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return .tls(String(describing: error))
        }
        return .closed(step: "\(step): \(SMTPClient.reason(error))")
    }

    /// The keyword of an EHLO line (`STARTTLS`, `AUTH PLAIN LOGIN` → `AUTH`).
    private static func keyword(_ line: String) -> String {
        String(line.prefix { $0 != " " }).uppercased()
    }

    private static func isAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// Set once, read from any thread.
private final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
