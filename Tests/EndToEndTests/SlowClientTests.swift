import Foundation
import ORATestSupport
import Testing

/// Clients that open connections and send slowly, or not at all: each connection has a limit for its opening and
/// for idling between requests, and one address cannot hold many connections in their opening. The clients write
/// HTTP's bytes themselves, slowly, so the servers here speak plain HTTP; with TLS of its own, a connection that never
/// begins its handshake meets the same opening limit.
@Suite("Slow clients")
struct SlowClientTests {
    /// Plays a slow client against 127.0.0.1 and prints one JSON object:
    /// - `head PORT PREFIX [FILLER]`: sends PREFIX, then FILLER (a header line) every 2 s, and reports when the
    ///   server closed;
    /// - `idle PORT`: sends one whole request, reads the answer, then half a head, and reports when it closed;
    /// - `silent PORT`: opens a connection, sends nothing, and reports when the server closed it;
    /// - `crowd PORT N`: opens N connections that send nothing, then one more, and reports whether that one was
    ///   closed at once, and whether a request on a fresh connection is answered once the N are gone.
    static let script = #"""
        import json, socket, sys, time
        mode, port = sys.argv[1], int(sys.argv[2])
        def closed_after(s, limit=60):
            start = time.time()
            s.settimeout(0.5)
            while time.time() - start < limit:
                try:
                    if s.recv(4096) == b"":
                        return time.time() - start
                except socket.timeout:
                    pass
                except OSError:
                    return time.time() - start
            return None
        if mode == "head":
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(sys.argv[3].encode())
            filler = (sys.argv[4] if len(sys.argv) > 4 else "X-Slow: 1\r\n").encode()
            start = time.time()
            s.setblocking(False)
            closed = None
            while time.time() - start < 60:
                try:
                    s.sendall(filler)
                except OSError:
                    closed = time.time() - start
                    break
                s.settimeout(2)
                try:
                    if s.recv(4096) == b"":
                        closed = time.time() - start
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed = time.time() - start
                    break
            print(json.dumps({"closed_after": closed}))
        elif mode == "silent":
            print(json.dumps({"closed_after": closed_after(socket.create_connection(("127.0.0.1", port)))}))
        elif mode == "idle":
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = s.recv(4096).decode(errors="replace")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            print(json.dumps({"first": answer.split("\r\n")[0], "closed_after": closed_after(s)}))
        else:
            crowd = [socket.create_connection(("127.0.0.1", port)) for _ in range(int(sys.argv[3]))]
            time.sleep(0.5)
            extra = socket.create_connection(("127.0.0.1", port))
            # Waited for up to 8 s: a loaded server may take seconds to accept the crowd before the extra, and
            # the opening deadline (10 s) would close it anyway only after that.
            refused = closed_after(extra, limit=8)
            for s in crowd:
                s.close()
            time.sleep(0.5)
            fresh = socket.create_connection(("127.0.0.1", port))
            fresh.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            fresh.settimeout(5)
            answer = fresh.recv(4096).decode(errors="replace")
            print(json.dumps({"extra_closed_after": refused, "fresh": answer.split("\r\n")[0]}))
        """#

    func run(_ arguments: String...) async throws -> [String: Any] {
        let files = try TemporaryDirectory()
        let path = try files.write("slow.py", Self.script)
        let result = await ChildProcess.runAsync("/usr/bin/python3", arguments: [path] + arguments)
        guard result.status == 0,
            let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        else { throw TestSetupError("slow client \(arguments): \(result.standardError) \(result.standardOutput)") }
        return object
    }

    static func port(of server: RunningServer) -> String {
        String(server.base.split(separator: ":").last ?? "")
    }

    @Test("a half-sent request head is closed within 10 seconds, however slowly it goes on; an agent's too")
    func halfSentHead() async throws {
        let server = try await RunningServer(tls: false)
        async let api = run("head", Self.port(of: server), "GET /healthz HTTP/1.1\r\nHost: x\r\n")
        async let agent = run("head", Self.port(of: server), "GET /agent/v1/connect HTTP/1.1\r\nHost: x\r\n")
        for answer in [try await api, try await agent] {
            let closed = try #require(answer["closed_after"] as? Double, "never closed: \(answer)")
            #expect(closed > 8 && closed < 13, "\(closed)")
        }
    }

    @Test("a connection idle between requests, or sending a later head slowly, is closed after 30 seconds")
    func idleKeepAlive() async throws {
        let server = try await RunningServer(tls: false)
        let answer = try await run("idle", Self.port(of: server))
        #expect(answer["first"] as? String == "HTTP/1.1 200 OK", "\(answer)")
        let closed = try #require(answer["closed_after"] as? Double, "never closed: \(answer)")
        #expect(closed > 25 && closed < 35, "\(closed)")
    }

    @Test("one address may hold at most 128 connections in their opening; the next is closed at once, others go on")
    func crowd() async throws {
        let server = try await RunningServer(tls: false)
        let answer = try await run("crowd", Self.port(of: server), "128")
        let closed = try #require(answer["extra_closed_after"] as? Double, "the extra connection stayed: \(answer)")
        // Closed by the limit, not by the 10-second opening deadline; the accepting itself may lag on a loaded machine.
        #expect(closed < 8, "\(closed)")
        #expect(answer["fresh"] as? String == "HTTP/1.1 200 OK", "\(answer)")
    }

    @Test("listen.openings_per_address sets that limit: lowered, the 17th is closed; raised, the 129th stays")
    func crowdLimitSet() async throws {
        let lowered = try await RunningServer(listenExtra: "  openings_per_address: 16", tls: false)
        let raised = try await RunningServer(listenExtra: "  openings_per_address: 200", tls: false)
        async let few = run("crowd", Self.port(of: lowered), "16")
        async let many = run("crowd", Self.port(of: raised), "128")
        let (closed, kept) = (try await few, try await many)
        let after = try #require(closed["extra_closed_after"] as? Double, "the 17th connection stayed: \(closed)")
        #expect(after < 8, "\(after)")
        #expect(kept["extra_closed_after"] is NSNull, "the 129th connection was closed: \(kept)")
        for answer in [closed, kept] { #expect(answer["fresh"] as? String == "HTTP/1.1 200 OK", "\(answer)") }
    }

    @Test("a trusted proxy, whose clients all share its address, is not held to that limit")
    func crowdBehindProxy() async throws {
        let server = try await RunningServer(listenExtra: "  behind_proxy: {trusted: [127.0.0.1]}", tls: false)
        let answer = try await run("crowd", Self.port(of: server), "128")
        #expect(answer["extra_closed_after"] is NSNull, "the proxy's 129th connection was closed: \(answer)")
        #expect(answer["fresh"] as? String == "HTTP/1.1 200 OK", "\(answer)")
    }

    @Test("with TLS of its own, a connection that never begins its handshake is closed within 10 seconds")
    func silentTLS() async throws {
        let server = try await RunningServer()
        #expect(server.base.hasPrefix("https://"))
        let answer = try await run("silent", Self.port(of: server))
        let closed = try #require(answer["closed_after"] as? Double, "never closed: \(answer)")
        #expect(closed > 8 && closed < 13, "\(closed)")
    }

    @Test("the relay port closes a half-sent opening line within 10 seconds")
    func relayOpeningLine() async throws {
        let server = try await RunningServer(tls: false)
        // The relay port is told with a screen ticket; without a session, its number is in the server's log.
        let log = server.process.standardErrorSoFar
        let line = try #require(log.split(separator: "\n").first { $0.contains("screen relay listening") })
        let port = try #require(line.split(separator: ":").last.map { String($0.prefix { $0.isNumber }) })
        let answer = try await run("head", port, "ORA-SCREEN/1 viewer ", "0")
        let closed = try #require(answer["closed_after"] as? Double, "never closed: \(answer)")
        #expect(closed > 8 && closed < 13, "\(closed)")
    }
}
