import Foundation
import ORATestSupport
import Testing

/// A server behind a proxy that terminates TLS (`listen.behind_proxy`): the proxy's `X-Forwarded-For` names the
/// client that per-address login limits and the audit log see, its `X-Forwarded-Proto` makes the console's cookie
/// `Secure`; the same headers from any other peer change nothing. The proxy here is 127.0.0.1; 127.0.0.2 is a
/// client that connects directly. The proxy speaks plain HTTP to the server, which has no TLS of its own.
@Suite("Behind a proxy")
struct BehindProxyTests {
    /// The status line and headers (lower-case names) of a request curl sends from `source`.
    struct Answer {
        var status: Int
        var headers: [(name: String, value: String)]

        func values(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }
    }

    static func send(
        _ path: String, on server: RunningServer, from source: String, json: String, headers: [String] = []
    ) async throws -> Answer {
        let result = await ChildProcess.runAsync(
            "/usr/bin/curl",
            arguments: [
                "-s", "-o", "/dev/null", "-D", "-", "--noproxy", "*", "--max-time", "10", "--interface", source,
                "-H", "Content-Type: application/json", "--data", json,
            ] + headers.flatMap { ["-H", $0] } + [server.base + path])
        let lines = result.standardOutput.split(separator: "\r\n")
        guard result.status == 0, let first = lines.first, let status = Int(first.split(separator: " ")[1]) else {
            throw TestSetupError("curl from \(source): \(result.status) \(result.standardError)")
        }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (
                line[..<colon].lowercased(),
                line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            )
        }
        return Answer(status: status, headers: headers.map { (name: $0.0, value: $0.1) })
    }

    static func failLogin(_ server: RunningServer, from source: String, forwardedFor: String?) async throws -> Int {
        try await send(
            "/api/v1/login", on: server, from: source, json: #"{"user": "lena.wolf", "password": "wrong"}"#,
            headers: forwardedFor.map { ["X-Forwarded-For: \($0)"] } ?? []
        ).status
    }

    @Test("per-address login limits and the audit log see the client the proxy names, and only the proxy's word")
    func loginLimitsSeeTheClient() async throws {
        let server = try await RunningServer(
            extra: "login_limits: {failures_per_account: 100, failures_per_address: 3, window: 5m}",
            listenExtra: "  behind_proxy: {trusted: [127.0.0.1]}", tls: false)
        // A client behind the proxy that sends its own header: the proxy appends the address it saw.
        for _ in 0..<3 {
            #expect(try await Self.failLogin(server, from: "127.0.0.1", forwardedFor: "10.6.6.6, 198.51.100.7") == 401)
        }
        #expect(try await Self.failLogin(server, from: "127.0.0.1", forwardedFor: "198.51.100.7") == 429)
        // Another client behind the same proxy is not limited by the first one's failures.
        #expect(try await Self.failLogin(server, from: "127.0.0.1", forwardedFor: "198.51.100.8") == 401)
        // A peer that is not the proxy cannot pass itself off as someone else, nor escape its own limit.
        for _ in 0..<3 {
            #expect(try await Self.failLogin(server, from: "127.0.0.2", forwardedFor: "198.51.100.9") == 401)
        }
        #expect(try await Self.failLogin(server, from: "127.0.0.2", forwardedFor: "198.51.100.10") == 429)

        let sources = try await server.sql(
            "SELECT string_agg(source_address || '=' || n, ' ' ORDER BY source_address) FROM (SELECT source_address, "
                + "count(*) AS n FROM audit_events WHERE event = 'operator.login_failed' GROUP BY source_address) s")
        #expect(sources == "127.0.0.2=4 198.51.100.7=4 198.51.100.8=1")
    }

    @Test("the console's cookie is Secure when the proxy says the browser used HTTPS; HSTS on every answer")
    func secureCookie() async throws {
        let server = try await RunningServer(listenExtra: "  behind_proxy: {trusted: [127.0.0.1]}", tls: false)
        let login = #"{"user": "lena.wolf", "password": "ora-demo"}"#
        let origin = "Origin: \(server.base)"
        let proxied = try await Self.send(
            "/api/v1/login/browser", on: server, from: "127.0.0.1", json: login,
            headers: [origin, "X-Forwarded-Proto: https", "X-Forwarded-For: 198.51.100.7"])
        #expect(proxied.status == 200)
        let cookie = try #require(proxied.values("set-cookie").first)
        #expect(cookie.hasPrefix("ora_session=ora_op_"))
        #expect(cookie.hasSuffix("; HttpOnly; SameSite=Strict; Secure"))
        #expect(proxied.values("strict-transport-security") == ["max-age=31536000"])

        // The proxy forwarding plain HTTP: no Secure, or the browser would drop the cookie.
        let plain = try await Self.send(
            "/api/v1/login/browser", on: server, from: "127.0.0.1", json: login,
            headers: [origin, "X-Forwarded-Proto: http"])
        #expect(try #require(plain.values("set-cookie").first).hasSuffix("SameSite=Strict"))
        // A peer that is not the proxy does not decide it either.
        let direct = try await Self.send(
            "/api/v1/login/browser", on: server, from: "127.0.0.2", json: login,
            headers: [origin, "X-Forwarded-Proto: https"])
        #expect(direct.status == 200)
        #expect(try #require(direct.values("set-cookie").first).hasSuffix("SameSite=Strict"))
        #expect(
            try await server.sql(
                "SELECT string_agg(source_address, ' ' ORDER BY sequence) FROM audit_events WHERE event = 'operator.login'"
            )
                == "198.51.100.7 127.0.0.1 127.0.0.2")
    }
}
