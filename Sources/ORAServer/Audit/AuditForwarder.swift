import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ORACore
import ORAStore
import ServiceLifecycle

/// Forwards the audit log to a SIEM as RFC 5424 syslog over TCP or TLS, at least once, from a position stored in
/// the database: it resumes where it stopped after a restart or a collector outage, and it never slows down the
/// actions being audited (it reads what is committed, on its own connection).
///
/// One replica forwards at a time (it holds an advisory lock; another takes over when it stops). Syslog over TCP
/// has no acknowledgements, so an event counts as delivered only when it was sent at least `confirmDelay` ago and
/// the connection is still up; after a break everything not yet confirmed is sent again. The collector may see a
/// few events twice, never a gap.
final class AuditForwarder: Service, Sendable {
    private let forwarding: AuditForwarding
    private let settings: SyslogSettings
    private let logger: Logger
    private let confirmDelay: Duration
    private let batchSize = 500

    init(
        forwarding: AuditForwarding,
        settings: SyslogSettings,
        logger: Logger,
        confirmDelay: Duration = .seconds(1)
    ) {
        self.forwarding = forwarding
        self.settings = settings
        self.logger = logger
        self.confirmDelay = confirmDelay
    }

    /// Forwards while this replica holds the forwarding lock; after an interruption (the collector or the database
    /// went away) it resumes from the last confirmed event, waiting half a second at first and up to 30 seconds
    /// while it keeps failing.
    func run() async throws {
        await keepRunning(
            logging: "audit forwarding interrupted; resuming from the last confirmed event "
                + "(syslog destination \(settings.destination))",
            logger: logger, pause: .milliseconds(500), longestPause: .seconds(30)
        ) {
            try await self.forwardWhileLeader()
        }
    }

    /// Takes the forwarding lock and forwards until something breaks. Returns `false` when another replica holds it.
    private func forwardWhileLeader() async throws -> Bool {
        try await forwarding.whileLeader(forwardingTo: settings.destination) { cursor in
            try await forward(from: cursor)
            return true
        } ?? false
    }

    private func forward(from cursor: AuditForwarding.Cursor) async throws {
        let destination = settings.destination
        var confirmed = try await cursor.confirmed()

        let channel = try await connect()
        defer { channel.close(promise: nil) }
        logger.info(
            "forwarding the audit log",
            metadata: ["syslog.destination": "\(destination)", "audit.sequence": "\(confirmed)"])
        var sent = confirmed
        var unconfirmed: [(sequence: Int64, at: ContinuousClock.Instant)] = []
        while !Task.isCancelled {
            let events = try await cursor.events(after: sent, limit: batchSize)
            if !events.isEmpty {
                var buffer = channel.allocator.buffer(capacity: events.count * 700)
                for event in events {
                    buffer.writeBytes(
                        AuditSyslog.frame(
                            AuditSyslog.message(event, hostname: settings.hostname, facility: settings.facility)))
                }
                try await channel.writeAndFlush(buffer)
                sent = events.last!.sequence
                unconfirmed.append((sent, .now))
            }
            guard channel.isActive else { throw ForwardingError.collectorClosed }
            let due = ContinuousClock.now - confirmDelay
            if let index = unconfirmed.lastIndex(where: { $0.at <= due }) {
                confirmed = unconfirmed[index].sequence
                unconfirmed.removeFirst(index + 1)
                try await cursor.confirm(confirmed)
            }
            if events.count < batchSize {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func connect() async throws -> any Channel {
        let tlsContext: NIOSSLContext?
        if settings.tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caFile = settings.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            tlsContext = try NIOSSLContext(configuration: configuration)
        } else {
            tlsContext = nil
        }
        let host = settings.host
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tlsContext, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHandler(DiscardingHandler())
                }
            }
            .connect(host: settings.host, port: settings.port)
            .get()
    }

    enum ForwardingError: Error, CustomStringConvertible {
        case collectorClosed
        var description: String { "the syslog collector closed the connection" }
    }
}

/// Reads and drops whatever the collector sends, so that its closing the connection is noticed.
private final class DiscardingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
