import NIOCore
import NIOPosix
import NIOSSL
import ORACore
import ORARelay
import Synchronization

/// Carries a leg of the screen that reached this replica with another replica's ticket to that replica: opens the
/// same leg on its relay port, marked as carried, as an agent or a native viewer would (`ScreenStream`). That
/// replica checks the ticket, pairs the legs, filters the viewer's input and records the screen, as for a leg of its
/// own; this one only passes the bytes. With TLS, the other replica's certificate is accepted only with the public
/// key that replica published in `server_instances`.
enum ScreenCarrier {
    /// Where another replica's relay port is reached, as it published it in `server_instances`.
    struct Target: Sendable, Hashable {
        /// `host:port`.
        var address: String
        /// The SHA-256 of its TLS certificate's public key (hex); nil when it is plain TCP.
        var keySHA256: String?
    }

    /// The other replica could not be reached, refused the leg, or showed another key.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Connects to `target`'s relay port and opens `leg` there with `ticket`.
    /// - Returns: the connection, admitted and not reading: `ScreenOpeningHandler.startForwarding` lets the screen
    ///   through.
    static func open(_ leg: ScreenTickets.Leg, ticket: String, at target: Target) async throws -> any Channel {
        guard let (host, port) = Self.split(target.address) else {
            throw Failure(description: "the replica's relay address \(target.address) is not host:port")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        let tls = target.keySHA256 == nil ? nil : try NIOSSLContext(configuration: configuration)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port).get()
        let answered = channel.eventLoop.makePromise(of: Void.self)
        let otherKey = Atomic(false)
        do {
            try await channel.eventLoop.submit {
                if let tls, let pin = target.keySHA256 {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(
                            context: tls, serverHostname: nil,
                            customVerificationCallback: { certificates, verified in
                                // The key the replica published, whoever signed the certificate.
                                let key = certificates.first.flatMap { try? ServerTLS.keySHA256(of: $0) }
                                otherKey.store(key != pin, ordering: .relaxed)
                                verified.succeed(key == pin ? .certificateVerified : .failed)
                            }))
                }
                // The other replica answers a viewer once its agent's leg has come, which it waits for up to
                // `ScreenRelay.agentLegTimeout`.
                try channel.pipeline.syncOperations.addHandler(
                    ScreenOpeningHandler(
                        answered: answered, within: .seconds(Int64(ScreenRelay.agentLegTimeout.components.seconds) + 5))
                )
            }.get()
            // What failed is told by the answer: a failed handshake fails the write too, less clearly.
            let opening = ScreenStream.request(leg: leg, ticket: ticket, carried: true)
            channel.writeAndFlush(ByteBuffer(string: opening), promise: nil)
            try await answered.futureResult.get()
        } catch {
            answered.fail(error)
            try? await channel.close()
            guard !otherKey.load(ordering: .relaxed) else {
                throw Failure(
                    description: "the replica at \(target.address) showed a TLS key other than the one it published "
                        + "in server_instances")
            }
            throw Failure(
                description: "the replica at \(target.address) did not admit the \(leg.rawValue) leg (\(error))")
        }
        return channel
    }

    /// The host and port of `host:port` or `[v6]:port`.
    static func split(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}
