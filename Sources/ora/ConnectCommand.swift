import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ORAClient
import ORACore
import ORARelay

extension ORACommand {
    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "See a session's screen with any VNC viewer, through a local port.",
            discussion: """
                Listens on --listen (127.0.0.1:5901 by default) and relays each VNC viewer that connects there to \
                the session's screen, through the ora server's relay port. Point the viewer at that address, for example \
                `vncviewer 127.0.0.1::5901`. Keyboard and mouse reach the machine only while the person there has \
                granted control; ask with `ora session control ID`. Stops when the session ends, or with Ctrl+C.
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id, or its first 4 or more characters.") var id: String
        @Option(help: "The local address and port the viewer connects to.") var listen = "127.0.0.1:5901"

        func validate() throws {
            _ = try sessionID(id)
            _ = try listenAddress()
        }

        private func listenAddress() throws -> (host: String, port: Int) {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                (1...65535).contains(port)
            else { throw ValidationError("--listen takes HOST:PORT, such as 127.0.0.1:5901") }
            var host = String(listen[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw ValidationError("--listen takes HOST:PORT, such as 127.0.0.1:5901") }
            return (host, port)
        }

        func run() async throws {
            let client = try authenticatedClient(options)
            let session = try await resolveSession(id, client: client)
            let (host, port) = try listenAddress()
            // A first ticket now, so a session that cannot be viewed is reported before anything listens.
            let first = try await ScreenTicket.request(for: session, client: client)
            let firstReceived = ContinuousClock.now
            let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
            do {
                server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: host, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
            } catch {
                throw fail("cannot listen on \(listen): \(error)", code: 1)
            }
            say("session \(session): point a VNC viewer at \(listen)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var pending: ScreenTicket? = first
                    try await server.executeThenClose { viewers in
                        for try await viewer in viewers {
                            // The first ticket serves the first viewer if it comes well within its lifetime (this
                            // clock, not the server's, says how long it has been); every other viewer gets its own.
                            let ticket: ScreenTicket
                            if let unused = pending,
                                ContinuousClock.now - firstReceived < ScreenTickets.lifetime / 3 * 2
                            {
                                ticket = unused
                            } else {
                                do {
                                    ticket = try await ScreenTicket.request(for: session, client: client)
                                } catch {
                                    // The reason is on standard error already; this viewer goes, the next may try.
                                    try? await viewer.executeThenClose { _, _ in }
                                    continue
                                }
                            }
                            pending = nil
                            say("viewer connected")
                            await relay(viewer, ticket: ticket, server: client.server, caFile: client.caFile)
                            say("viewer disconnected")
                        }
                    }
                }
                // The session's end ends the command, whether or not a viewer is connected.
                group.addTask {
                    let last = try await SessionEvents.follow(session, client: client) { $0.endReason != nil }
                    if let reason = last.endReason {
                        say("the session has ended (\(reason))")
                    } else {
                        throw fail("lost the session's state from the server", code: 3)
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }

        /// Relays one viewer's TCP connection to the server's relay port, both ways, until either side ends.
        private func relay(
            _ viewer: NIOAsyncChannel<ByteBuffer, ByteBuffer>, ticket: ScreenTicket, server: String, caFile: String?
        ) async {
            var host = URLComponents(string: server)?.host ?? "localhost"
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            do {
                // The viewer's connection is closed however the relay's goes, refused included.
                try await viewer.executeThenClose { fromViewer, toViewer in
                    var configuration = TLSConfiguration.makeClientConfiguration()
                    if let caFile { configuration.trustRoots = .file(caFile) }
                    let tls = try server.hasPrefix("https://") ? NIOSSLContext(configuration: configuration) : nil
                    let relay = try await ScreenStream.connect(host: host, port: ticket.relayPort, tls: tls)
                    try await relay.executeThenClose { fromServer, toServer in
                        var incoming = fromServer.makeAsyncIterator()
                        let rest = try await ScreenStream.open(
                            leg: .viewer, ticket: ticket.ticket, write: { try await toServer.write($0) },
                            next: { try await incoming.next() })
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            // Viewer to desktop, until the viewer leaves: then the relay connection closes.
                            group.addTask {
                                for try await buffer in fromViewer { try await toServer.write(buffer) }
                                try? await relay.channel.close()
                            }
                            // Desktop to viewer, until the server closes (the session ended, say).
                            if rest.readableBytes > 0 { try await toViewer.write(rest) }
                            while let buffer = try await incoming.next() { try await toViewer.write(buffer) }
                            group.cancelAll()
                        }
                    }
                }
            } catch let refused as ScreenStream.Refused {
                FileHandle.standardError.write(Data("ora: error: \(refused.description)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("ora: the screen connection ended: \(error)\n".utf8))
            }
        }
    }
}

/// Writes `line` to standard output at once: each line is news for whoever watches (a script waiting for the port).
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A viewer ticket from `POST /api/v1/sessions/{id}/screen`.
typealias ScreenTicket = Components.Schemas.ScreenTicket

extension Components.Schemas.ScreenTicket {
    static func request(for session: String, client: APIClient) async throws -> Self {
        try await client.call { try await $0.openScreen(path: .init(id: session)).created.body.json }
    }
}
