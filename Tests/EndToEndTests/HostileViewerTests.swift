import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import ORAClient
import ORATestSupport
import Synchronization
import Testing

/// The relay against viewers that misbehave, speaking RFB over the viewer WebSocket directly: tickets that do not
/// admit, operators who are not the session's helper, and byte streams no real viewer sends. Each bad viewer is
/// closed (and recorded); the server goes on serving the next one.
@Suite("Hostile viewers")
struct HostileViewerTests {
    /// How a raw viewer's connection went.
    struct Outcome: Sendable {
        /// What the server sent first (the RFB greeting when the desktop answered).
        var greeting = ""
        /// The close code the server sent, if it closed.
        var closeCode: WebSocketErrorCode?
    }

    /// Connects a viewer with `ticket`, does the RFB handshake (version 3.8, security None, shared), sends
    /// `payload` in `frames`, and reads until the server closes or `linger` passes.
    func viewer(
        _ server: RunningServer, ticket: String, payload: [UInt8] = [], frames: Int = 1, linger: Duration = .seconds(3)
    ) async throws -> Outcome {
        let url = server.webSocketBase + "/viewer/v1/screen?ticket=\(ticket)"
        let outcome = Mutex(Outcome())
        let close = try await WebSocketClient.connect(
            url: url, tlsConfiguration: TestTLS.clientConfiguration, logger: Logger(label: "hostile-viewer")
        ) {
            inbound, outbound, _ in
            var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
            // The greeting (12 bytes) and the security types arrive from x11vnc through the relay.
            var received: [UInt8] = []
            while received.count < 12, case .binary(let buffer) = try await messages.next() {
                received += buffer.readableBytesView
            }
            outcome.withLock { $0.greeting = String(decoding: received.prefix(12), as: UTF8.self) }
            try await outbound.write(.binary(ByteBuffer(bytes: Array("RFB 003.008\n".utf8))))
            while received.count < 14, case .binary(let buffer) = try await messages.next() {
                received += buffer.readableBytesView
            }
            try await outbound.write(.binary(ByteBuffer(bytes: [1])))  // security None
            try await outbound.write(.binary(ByteBuffer(bytes: [1])))  // ClientInit: shared
            if !payload.isEmpty {
                let size = max(1, payload.count / frames)
                var offset = 0
                while offset < payload.count {
                    let end = min(payload.count, offset + size)
                    try await outbound.write(.binary(ByteBuffer(bytes: payload[offset..<end])))
                    offset = end
                }
            }
            // Read until the server closes, or until `linger` passes and this viewer leaves by itself.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: linger)
                    try await outbound.close(.normalClosure, reason: nil)
                }
                while try await messages.next() != nil {}
                group.cancelAll()
            }
        }
        outcome.withLock { $0.closeCode = close?.closeCode }
        return outcome.withLock { $0 }
    }

    /// Sends a WebSocket upgrade request over a socket of its own (TLS for https:// and wss://), as a browser's page
    /// at `origin` would, and returns the status line's code (101 when the server upgraded) and the line.
    static func upgradeRequest(_ url: String, origin: String?) async -> (status: Int, head: String) {
        let script = """
            import socket, ssl, sys, urllib.parse
            url = urllib.parse.urlsplit(sys.argv[1])
            request = ("GET %s?%s HTTP/1.1\\r\\nHost: %s\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\n"
                       "Sec-WebSocket-Version: 13\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n"
                       % (url.path, url.query, url.netloc))
            if sys.argv[2]:
                request += "Origin: %s\\r\\n" % sys.argv[2]
            with socket.create_connection((url.hostname, url.port), timeout=10) as s:
                if url.scheme in ("https", "wss"):
                    s = ssl.create_default_context().wrap_socket(s, server_hostname=url.hostname)
                s.sendall((request + "\\r\\n").encode())
                data = b""
                while b"\\r\\n" not in data:
                    chunk = s.recv(1024)
                    if not chunk:
                        break
                    data += chunk
            print(data.split(b"\\r\\n")[0].decode())
            """
        let result = await ChildProcess.runAsync("/usr/bin/python3", arguments: ["-c", script, url, origin ?? ""])
        let head = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        return (Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0, head + result.standardError)
    }

    func ticket(_ id: String, on server: RunningServer, token: String) async throws -> String {
        let answer = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: token)
        guard answer.status == 201, let ticket = answer.json(Schemas.ScreenTicket.self)?.ticket else {
            throw TestSetupError("no screen ticket: \(answer.status) \(answer.body)")
        }
        return ticket
    }

    func refusals(on server: RunningServer) async throws -> [String] {
        try await server.sql(
            "SELECT string_agg(details->>'leg' || ':' || (details->>'reason'), ',' ORDER BY sequence) "
                + "FROM audit_events WHERE event = 'screen.refused'"
        ).split(separator: ",").map(String.init)
    }

    @Test("tickets: only the helper gets one; wrong, replayed and revoked tickets are refused and recorded")
    func tickets() async throws {
        // The person at the machine does not answer this offer (the consent script waits on INC0000003).
        let offered = try await OfferedSession.make(ticket: "INC0000003")
        defer { offered.stop() }
        let (server, hannah, unanswered) = (offered.server, offered.hannah, offered.id)
        let early = try await HTTP.post(server.base + "/api/v1/sessions/\(unanswered)/screen", token: hannah)
        #expect(early.status == 409 && early.refusal?.error == "not_accepted", "\(early.body)")
        #expect(
            try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(unanswered)", token: hannah).status == 200)
        let id = try await offered.offerAgain(ticket: "INC0000001")
        _ = try await session(id, on: server, token: hannah) { $0.state == .viewing }

        // Someone else's session: unknown to another helper, forbidden to an administrator.
        let lena = try await server.token("lena.wolf")
        let other = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: lena)
        #expect(other.status == 404, "\(other.body)")
        let admin = try await server.token("peter.schmidt")
        let administrator = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: admin)
        #expect(administrator.status == 403 && administrator.refusal?.error == "forbidden")
        let anonymous = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen")
        #expect(anonymous.status == 401)

        // A made-up ticket: the upgrade is refused (400, as the WebSocket library answers every refused upgrade; the
        // reason is recorded).
        await #expect(throws: (any Error).self) {
            _ = try await viewer(server, ticket: String(repeating: "0", count: 64))
        }
        let made = await Self.upgradeRequest(
            server.base + "/viewer/v1/screen?ticket=" + String(repeating: "1", count: 64), origin: nil)
        #expect(made.status == 400, "\(made)")
        // A page of another site cannot use a good ticket, and does not use it up.
        let stolen = try await ticket(id, on: server, token: hannah)
        let refusedSite = await Self.upgradeRequest(
            server.base + "/viewer/v1/screen?ticket=" + stolen, origin: "https://attacker.example")
        #expect(refusedSite.status == 400, "\(refusedSite)")
        #expect(
            await Self.upgradeRequest(server.base + "/viewer/v1/screen?ticket=" + stolen, origin: "null").status == 400)
        // Nor a page of another service on the same host: browsers count it as the same site, so its requests
        // carry the console's cookie too.
        let otherPort = "http://127.0.0.1:\(try Network.freePort())"
        let refusedPort = await Self.upgradeRequest(
            server.base + "/viewer/v1/screen?ticket=" + stolen, origin: otherPort)
        #expect(refusedPort.status == 400, "\(refusedPort)")
        // A page of this server (the same host and port) is let through with it.
        let sameSite = await Self.upgradeRequest(
            server.base + "/viewer/v1/screen?ticket=" + stolen, origin: server.base.uppercased())
        #expect(sameSite.status == 101, "\(sameSite)")
        // A good ticket admits once: the desktop answers; the same ticket again is a replay.
        let used = try await ticket(id, on: server, token: hannah)
        let first = try await viewer(server, ticket: used, linger: .milliseconds(300))
        #expect(first.greeting == "RFB 003.008\n", "\(first)")
        await #expect(throws: (any Error).self) { _ = try await viewer(server, ticket: used) }

        // The relay port, as `ora connect` uses it: a native viewer with a good ticket gets the answer line and the
        // desktop's greeting; the same ticket again, or a line that is not the protocol's, gets nothing but a close.
        let answer = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: hannah)
        let relayPort = try #require(answer.json(Schemas.ScreenTicket.self)?.relayPort, "\(answer.body)")
        let native = try #require(answer.json(Schemas.ScreenTicket.self)?.ticket)
        let admitted = try await RelayPort.exchange(port: relayPort, send: "ORA-SCREEN/1 viewer \(native)\n", tls: true)
        #expect(admitted.hasPrefix("ORA-SCREEN/1 ok\nRFB 003.008\n"), "\(admitted)")
        #expect(try await RelayPort.exchange(port: relayPort, send: "ORA-SCREEN/1 viewer \(native)\n", tls: true) == "")
        #expect(try await RelayPort.exchange(port: relayPort, send: "GET / HTTP/1.1\r\n\r\n", tls: true) == "")

        // The session ends: a ticket issued before stops admitting.
        let unused = try await ticket(id, on: server, token: hannah)
        #expect(try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: hannah).status == 200)
        await #expect(throws: (any Error).self) { _ = try await viewer(server, ticket: unused) }
        let ended = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: hannah)
        #expect(ended.status == 409 && ended.refusal?.error == "session_ended", "\(ended.body)")

        await #expect(
            try refusals(on: server) == [
                "viewer:unknown_ticket", "viewer:unknown_ticket", "viewer:ticket_replayed", "viewer:ticket_replayed",
                "viewer:unknown_ticket",
            ])
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'screen.opened' AND session_id = '\(id)'")
                == "3")
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'screen.closed' AND session_id = '\(id)'") == "3",
            "the viewer that left at once is recorded too")
    }

    @Test("oversized clipboard, unknown messages, a cut stream and a flood of tiny frames: closed, the server goes on")
    func hostileStreams() async throws {
        let offered = try await OfferedSession.make()
        defer { offered.stop() }
        let (server, hannah, id) = (offered.server, offered.hannah, offered.id)
        _ = try await session(id, on: server, token: hannah) { $0.state == .viewing }

        // ClientCutText claiming 4 GiB: closed as a protocol error, nothing allocated.
        let cut: [UInt8] = [6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x41]
        let oversized = try await viewer(server, ticket: try await ticket(id, on: server, token: hannah), payload: cut)
        #expect(oversized.closeCode == .protocolError, "\(oversized)")
        // A message type RFB does not define: its length is unknowable, so the stream closes.
        let unknown = try await viewer(
            server, ticket: try await ticket(id, on: server, token: hannah), payload: [200, 1, 2, 3])
        #expect(unknown.closeCode == .protocolError, "\(unknown)")
        // Thousands of one-byte frames of valid requests (FramebufferUpdateRequest, 10 bytes each): relayed.
        let request: [UInt8] = [3, 1, 0, 0, 0, 0, 0, 16, 0, 16]
        let flood = Array(repeating: request, count: 500).flatMap { $0 }
        let tiny = try await viewer(
            server, ticket: try await ticket(id, on: server, token: hannah), payload: flood, frames: flood.count,
            linger: .milliseconds(500))
        #expect(tiny.greeting == "RFB 003.008\n")
        #expect(tiny.closeCode != .protocolError, "\(tiny)")
        // A stream cut in the middle of a PointerEvent: recorded as truncated.
        let truncated = try await viewer(
            server, ticket: try await ticket(id, on: server, token: hannah), payload: [5, 0, 0], linger: .zero)
        #expect(truncated.greeting == "RFB 003.008\n")

        // The session and the server carry on: another viewer gets the desktop.
        let after = try await viewer(
            server, ticket: try await ticket(id, on: server, token: hannah), linger: .milliseconds(300))
        #expect(after.greeting == "RFB 003.008\n")
        let state = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: hannah)
        #expect(state.json(Schemas.Session.self)?.state.rawValue == "viewing")
        let errors = try await eventually {
            try await server.sql(
                "SELECT string_agg(details->>'error', '|' ORDER BY sequence) FROM audit_events "
                    + "WHERE event = 'screen.closed' AND outcome = 'failure'")
        } until: {
            $0.components(separatedBy: "|").count == 3
        }
        #expect(errors.contains("4294967295"), "\(errors)")
        #expect(errors.contains("message type 200"), "\(errors)")
        #expect(errors.contains("the stream ended inside a message"), "\(errors)")
    }
}

/// Bytes written by hand to a server's port (the relay's, or the HTTP port), over the test CA's TLS (`TestTLS`)
/// or plain TCP.
enum RelayPort {
    /// Sends `text`, then reads what comes back for up to `within` or until the server closes.
    /// - Parameter tls: speak TLS, verifying the server as `localhost` with the test CA.
    static func exchange(
        port: Int, send text: String, within: Duration = .seconds(2), tls: Bool
    ) async throws
        -> String
    {
        let context = tls ? try NIOSSLContext(configuration: TestTLS.clientConfiguration) : nil
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: text))
            // The reader stops at the server's close; a timer closes the connection after `within` otherwise.
            let timer = Task {
                try await Task.sleep(for: within)
                try await channel.channel.close()
            }
            defer { timer.cancel() }
            var received = ""
            do {
                for try await buffer in inbound { received += String(buffer: buffer) }
            } catch {}
            return received
        }
    }
}

/// A desktop on Xvfb, a server, and an agent for WS-0101 on that desktop, offered help (view) by hannah.fischer;
/// the person at the machine (the consent script) accepts.
struct OfferedSession {
    let desktop: TestDesktop
    let setup: OfferSetup
    let agent: ChildProcess
    let hannah: String
    let id: String
    var server: RunningServer { setup.server }

    static func make(
        ticket: String = "INC0000001", desktop given: TestDesktop? = nil
    ) async throws -> OfferedSession {
        let desktop: TestDesktop
        if let given { desktop = given } else { desktop = try await TestDesktop() }
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let agent = try setup.startAgent("--display", desktop.display)
        let hannah = try await setup.server.token("hannah.fischer")
        try await waitUntilOnline("ws-0101", server: setup.server, token: hannah)
        let id = try await offer(on: setup.server, token: hannah, ticket: ticket)
        return OfferedSession(desktop: desktop, setup: setup, agent: agent, hannah: hannah, id: id)
    }

    /// Offers help to the machine again (after the first session ended); returns the new session's id.
    func offerAgain(ticket: String) async throws -> String {
        try await Self.offer(on: server, token: hannah, ticket: ticket)
    }

    private static func offer(on server: RunningServer, token: String, ticket: String) async throws -> String {
        let offered = try await HTTP.post(
            server.base + "/api/v1/offers",
            json: #"{"machine": "ws-0101", "mode": "view", "ticket": "\#(ticket)"}"#, token: token)
        guard let id = offered.json(Schemas.Session.self)?.id else { throw TestSetupError("offer: \(offered.body)") }
        return id
    }

    func stop() {
        agent.send(SIGKILL)
    }
}
