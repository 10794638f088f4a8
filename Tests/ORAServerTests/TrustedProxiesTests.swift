import Testing

@testable import ORAServer

@Suite("Trusted proxies and the client behind them")
struct TrustedProxiesTests {
    static let proxies = try! TrustedProxies(["10.0.0.0/8", "192.0.2.10", "fd00:ab::/32"])

    @Test(
        "addresses and ranges, IPv4 and IPv6, an IPv4 address mapped into IPv6 as itself",
        arguments: [
            ("10.0.0.1", true), ("10.255.255.255", true), ("11.0.0.1", false), ("192.0.2.10", true),
            ("192.0.2.11", false), ("::ffff:10.1.2.3", true), ("fd00:ab:1::5", true), ("fd00:ac::5", false),
            ("FD00:AB::1", true), ("", false), ("10.0.0.1 ", false), ("proxy.corp.example", false),
            ("10.0.0", false), ("unknown", false),
        ])
    func contains(address: String, trusted: Bool) {
        #expect(Self.proxies.contains(address) == trusted)
    }

    @Test("a range's host bits do not matter, /0 is everything of its family, /32 one address")
    func prefixes() throws {
        #expect(try TrustedProxies(["10.1.2.3/8"]).contains("10.200.0.1"))
        #expect(try TrustedProxies(["0.0.0.0/0"]).contains("203.0.113.9"))
        #expect(try !TrustedProxies(["0.0.0.0/0"]).contains("2001:db8::1"))
        #expect(try TrustedProxies(["172.16.0.0/12"]).contains("172.31.255.1"))
        #expect(try !TrustedProxies(["172.16.0.0/12"]).contains("172.32.0.1"))
        #expect(try !TrustedProxies(["198.51.100.7/32"]).contains("198.51.100.8"))
    }

    @Test(
        "what a configuration names wrongly gets a message naming it",
        arguments: [
            ([String](), "name at least one proxy address"),
            (["proxy.corp.example"], "\"proxy.corp.example\" is not an IP address or a range like 10.0.0.0/8"),
            (["10.0.0.0/33"], "\"10.0.0.0/33\": the prefix length must be a number from 0 to 32"),
            (["fd00::/129"], "\"fd00::/129\": the prefix length must be a number from 0 to 128"),
            (["10.0.0.0/"], "\"10.0.0.0/\": the prefix length must be a number from 0 to 32"),
            (["10.0.0.0/-1"], "\"10.0.0.0/-1\": the prefix length"),
            (["10.0.0.0/+8"], "\"10.0.0.0/+8\": the prefix length"),
            (["10.0.0.0/8", "10.0.0.0/8/8"], "\"10.0.0.0/8/8\": the prefix length"),
        ])
    func refused(entries: [String], message: String) {
        let error = #expect(throws: TrustedProxies.Error.self) { try TrustedProxies(entries) }
        #expect(error?.description.hasPrefix(message) == true, "\(error?.description ?? "no error")")
    }

    @Test(
        "the client: the peer unless it is a trusted proxy; then the nearest hop no trusted proxy wrote",
        arguments: [
            // Directly connected: whatever it claims is ignored.
            ("203.0.113.5", ["198.51.100.7"], "203.0.113.5"),
            // One proxy in front.
            ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
            // A client that sends its own header: the proxy appends the real address, which is what counts.
            ("10.0.0.2", ["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
            ("10.0.0.2", ["1.2.3.4", "198.51.100.7"], "198.51.100.7"),
            // Two proxies, both trusted.
            ("10.0.0.2", ["198.51.100.7, 192.0.2.10"], "198.51.100.7"),
            // Only proxies: the farthest one.
            ("10.0.0.2", ["10.9.9.9, 192.0.2.10"], "10.9.9.9"),
            // No header from a proxy: the proxy itself.
            ("10.0.0.2", [], "10.0.0.2"),
            // Garbage stops the reading at the last hop known.
            ("10.0.0.2", ["198.51.100.7, unknown"], "10.0.0.2"),
            ("10.0.0.2", ["198.51.100.7, <script>, 192.0.2.10"], "192.0.2.10"),
            // Ports and brackets as some proxies write them; addresses recorded normalized.
            ("10.0.0.2", ["198.51.100.7:51234"], "198.51.100.7"),
            ("10.0.0.2", ["[2001:DB8::0:1]:443"], "2001:db8::1"),
            ("10.0.0.2", ["2001:db8:0:0::1"], "2001:db8::1"),
            ("10.0.0.2", ["::ffff:198.51.100.7"], "198.51.100.7"),
            ("10.0.0.2", ["[2001:db8::1"], "10.0.0.2"),
            ("10.0.0.2", ["198.51.100.7:port"], "10.0.0.2"),
            ("::ffff:10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        ])
    func client(peer: String, forwardedFor: [String], expected: String) {
        #expect(Self.proxies.client(peer: peer, forwardedFor: forwardedFor) == expected)
    }

    @Test(
        "loopback: 127.0.0.0/8, ::1 and localhost; nothing else",
        arguments: [
            ("127.0.0.1", true), ("127.1.2.3", true), ("::1", true), ("localhost", true), ("LOCALHOST", true),
            ("0.0.0.0", false), ("::", false), ("10.0.0.1", false), ("ora.corp.example", false),
            ("::ffff:127.0.0.1", true),
        ])
    func loopback(host: String, loopback: Bool) {
        #expect(TrustedProxies.isLoopback(host: host) == loopback)
    }
}

@Suite("Connections in their opening, per address")
struct OpeningConnectionsTests {
    @Test(
        "an address may have so many connections in their opening; a trusted proxy, whose clients all share its address, is not limited"
    )
    func limits() throws {
        let openings = OpeningConnections(perAddress: 2, proxies: try TrustedProxies(["10.0.0.0/8"]))
        #expect(openings.admit("198.51.100.7"))
        #expect(openings.admit("198.51.100.7"))
        #expect(!openings.admit("198.51.100.7"))
        #expect(openings.admit("198.51.100.8"), "each address on its own")
        openings.release("198.51.100.7")
        #expect(openings.admit("198.51.100.7"), "a connection past its opening no longer counts")
        for _ in 0..<100 { #expect(openings.admit("10.1.2.3")) }
        #expect(openings.count("10.1.2.3") == 0)
        openings.release("10.1.2.3")
        #expect(openings.count("198.51.100.7") == 2)
        // Without proxies, none is exempt.
        let direct = OpeningConnections(perAddress: 1)
        #expect(direct.admit("10.1.2.3"))
        #expect(!direct.admit("10.1.2.3"))
    }
}
