import Foundation
import HTTPTypes
import Testing

@testable import ORAServer

@Suite("The console's credential and the pages it trusts")
struct BrowserCredentialTests {
    static let names = ["ora.corp.example", "localhost", "127.0.0.1", "::1"]

    @Test(
        "a page of this server is one of its names on the host and port the request went to; nothing else is",
        arguments: [
            ("https://ora.corp.example", "ora.corp.example", true),
            ("HTTPS://ORA.corp.example", "ora.corp.example", true),
            ("http://ora.corp.example:8443", "ora.corp.example:8443", true),
            ("http://127.0.0.1:8080", "127.0.0.1:8080", true),
            ("http://[::1]:8080", "[::1]:8080", true),
            // Another port of the same host is the same site to a browser, and still not this server.
            ("http://127.0.0.1:9999", "127.0.0.1:8080", false),
            // A name the server is not configured by, even where the Host header agrees (DNS rebinding).
            ("http://attacker.example", "attacker.example", false),
            ("https://ora.corp.example.attacker.example", "ora.corp.example", false),
            ("null", "ora.corp.example", false),
            ("https://ora.corp.example/page", "ora.corp.example", false),
            ("https://user@ora.corp.example", "ora.corp.example", false),
            ("file://ora.corp.example", "ora.corp.example", false),
            ("https://ora.corp.example", "", false),
        ])
    func pages(origin: String, host: String, trusted: Bool) {
        #expect(BrowserOrigin.isPage(origin: origin, host: host.isEmpty ? nil : host, names: Self.names) == trusted)
    }

    @Test("WebSockets: browsers' pages must be this server's; tools that send no web origin are not pages")
    func sockets() {
        let host = "127.0.0.1:8080"
        #expect(BrowserOrigin.mayOpenSocket(origin: nil, host: host, names: Self.names))
        #expect(BrowserOrigin.mayOpenSocket(origin: "vncviewer", host: host, names: Self.names))
        #expect(BrowserOrigin.mayOpenSocket(origin: "http://127.0.0.1:8080", host: host, names: Self.names))
        #expect(!BrowserOrigin.mayOpenSocket(origin: "null", host: host, names: Self.names))
        #expect(!BrowserOrigin.mayOpenSocket(origin: "http://127.0.0.1:9999", host: host, names: Self.names))
    }

    @Test("the cookie: HttpOnly, SameSite=Strict, Secure only over TLS, and read back from any Cookie header")
    func cookie() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let value = BrowserCredential.cookie(
            token: "ora_op_x", expiresAt: now.addingTimeInterval(3600.9), now: now, secure: false)
        #expect(value == "ora_session=ora_op_x; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict")
        #expect(
            BrowserCredential.cookie(token: "t", expiresAt: now, now: now, secure: true).hasSuffix("; Secure"))
        #expect(BrowserCredential.expiredCookie(secure: false).hasPrefix("ora_session=; Path=/; Max-Age=0"))
        #expect(BrowserCredential.token(in: ["a=1; ora_session=ora_op_y; b=2"]) == "ora_op_y")
        #expect(BrowserCredential.token(in: ["a=1", " ora_session = ora_op_z "]) == "ora_op_z")
        #expect(BrowserCredential.token(in: ["ora_session=", "other=ora_session=ora_op_w"]) == nil)
        #expect(BrowserCredential.token(in: []) == nil)
    }
}
