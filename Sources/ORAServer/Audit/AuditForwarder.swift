import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ORACore
import ORAStore
import PostgresNIO
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
    /// The advisory lock key of the forwarding replica ("ora_fwd!" in ASCII).
    static let lockKey: Int64 = 0x6f72_615f_6677_6421

    private let client: PostgresClient
    private let settings: SyslogSettings
    private let logger: Logger
    private let confirmDelay: Duration
    private let batchSize = 500

    init(
        log: AuditLog,
        client: PostgresClient,
        settings: SyslogSettings,
        logger: Logger,
        confirmDelay: Duration = .seconds(1)
    ) {
        self.client = client
        self.settings = settings
        self.logger = logger
        self.confirmDelay = confirmDelay
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var backoff = Duration.milliseconds(500)
            while !Task.isCancelled {
                do {
                    let forwarded = try await self.forwardWhileLeader()
                    if forwarded { backoff = .milliseconds(500) }
                } catch {
                    if Task.isCancelled { break }
                    self.logger.warning(
                        "audit forwarding interrupted; resuming from the last confirmed event",
                        metadata: [
                            "syslog.destination": "\(self.settings.destination)",
                            "error": "\(DatabaseErrorDescription.describe(error))",
                        ])
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }

    /// Takes the forwarding lock and forwards until something breaks. Returns `false` when another replica holds it.
    private func forwardWhileLeader() async throws -> Bool {
        try await client.withConnection { connection in
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: logger)
            var locked = false
            for try await value in rows.decode(Bool.self) { locked = value }
            guard locked else { return false }
            do {
                try await forward(on: connection)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            return true
        }
    }

    private func forward(on connection: PostgresConnection) async throws {
        let destination = settings.destination
        try await connection.query(
            "INSERT INTO audit_forwarding (destination, sequence) VALUES (\(destination), 0) ON CONFLICT DO NOTHING",
            logger: logger)
        var confirmed: Int64 = 0
        let rows = try await connection.query(
            "SELECT sequence FROM audit_forwarding WHERE destination = \(destination)", logger: logger)
        for try await value in rows.decode(Int64.self) { confirmed = value }

        let channel = try await connect()
        defer { channel.close(promise: nil) }
        logger.info(
            "forwarding the audit log",
            metadata: ["syslog.destination": "\(destination)", "audit.sequence": "\(confirmed)"])
        var sent = confirmed
        var unconfirmed: [(sequence: Int64, at: ContinuousClock.Instant)] = []
        while !Task.isCancelled {
            let events = try await AuditLog.events(after: sent, limit: batchSize, on: connection, logger: logger)
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
                try await connection.query(
                    """
                    UPDATE audit_forwarding SET sequence = \(confirmed), updated_at = now()
                    WHERE destination = \(destination)
                    """,
                    logger: logger)
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
