import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ORARelay
import ServiceLifecycle

/// The relay port: accepts the streams of agents' screen legs and of native viewers (`ora connect`) and hands each
/// to `ScreenService`. It stops accepting at shutdown, and the connections still open are closed then.
///
/// All relay connections share one event loop of their own, so the two legs of a pair are always on the same
/// thread and the glue between them hands bytes over without a thread switch; that thread relays about a gigabyte
/// per second (see `Docs/Screen.md` for the figures).
final class ScreenRelayListener: Service {
    private let host: String
    private let port: Int
    private let screens: ScreenService
    private let openings: OpeningConnections
    private let tls: ServerTLS?
    private let logger: Logger
    private let listening: @Sendable () async -> Void

    /// - Parameters:
    ///   - tls: the server's own TLS, which every relay connection speaks first when set.
    ///   - listening: called once the port is bound (and `screens.relayPort` set).
    init(
        host: String, port: Int, screens: ScreenService, openings: OpeningConnections, tls: ServerTLS?,
        logger: Logger, listening: @escaping @Sendable () async -> Void
    ) {
        self.listening = listening
        self.host = host
        self.port = port
        self.screens = screens
        self.openings = openings
        self.tls = tls
        self.logger = logger
    }

    func run() async throws {
        let (screens, openings, tls) = (self.screens, self.openings, self.tls)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        OpeningDeadline(.line, within: ServerApplication.requestHeadLimit, connections: openings))
                    try channel.pipeline.syncOperations.addHandler(
                        ScreenOpeningHandler { opening, channel in screens.opened(opening, channel: channel) })
                }
            }
            .bind(host: host, port: port).get()
        let bound = server.localAddress?.port ?? port
        screens.relayPort = bound
        logger.notice("screen relay listening", metadata: ["address": "\(host):\(bound)"])
        await listening()
        // Until shutdown, or until cancelled (another service failed); the connections still open then close with
        // their sessions.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await server.closeFuture.get()
            } onGracefulShutdown: {
                server.close(promise: nil)
            }
        } onCancel: {
            server.close(promise: nil)
        }
    }
}
