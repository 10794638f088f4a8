import Foundation

/// The proxies in front of the server that terminate TLS (`listen.behind_proxy.trusted`): addresses and CIDR ranges
/// whose `X-Forwarded-For` is believed. A request from anywhere else is its TCP peer, whatever it claims, so a
/// client cannot pick the address that per-address login limits and the audit log see.
public struct TrustedProxies: Sendable, Hashable {
    /// One address or range, as written in the configuration.
    struct Range: Sendable, Hashable {
        /// The network's address bytes (4 or 16), with the bits past the prefix cleared.
        var network: [UInt8]
        /// How many leading bits must match.
        var prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == network.count else { return false }
            var remaining = prefixLength
            for (index, byte) in network.enumerated() where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if address[index] & mask != byte { return false }
                remaining -= bits
            }
            return true
        }
    }

    /// The ranges, in the order written.
    let ranges: [Range]
    /// The entries as written, for logs and `check-config`.
    public let entries: [String]

    /// Parses `entries`: IPv4 or IPv6 addresses, or ranges in CIDR notation (`10.0.0.0/8`, `fd00::/8`).
    /// - Throws: `TrustedProxies.Error` naming the first entry that is neither, and an empty list.
    public init(_ entries: [String]) throws(TrustedProxies.Error) {
        guard !entries.isEmpty else { throw .empty }
        var ranges: [Range] = []
        for entry in entries {
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let address = Self.bytes(of: String(parts[0])) else { throw .notAnAddress(entry) }
            var prefixLength = address.count * 8
            if parts.count == 2 {
                guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(parts[1]),
                    (0...prefixLength).contains(length)
                else { throw .badPrefix(entry, maximum: prefixLength) }
                prefixLength = length
            }
            var network = address
            for index in network.indices {
                let kept = max(0, min(8, prefixLength - index * 8))
                network[index] &= UInt8(truncatingIfNeeded: 0xFF << (8 - kept))
            }
            ranges.append(Range(network: network, prefixLength: prefixLength))
        }
        self.ranges = ranges
        self.entries = entries
    }

    /// Whether `address` (an IP address as text) is one of the trusted proxies.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The client a request came from: its TCP `peer`, unless the peer is a trusted proxy; then the nearest address
    /// in `forwardedFor` (the `X-Forwarded-For` header lines, in order) that is not a trusted proxy. Each proxy
    /// appends the address it was reached from, so the list is read from the right, and only as far as trusted
    /// proxies wrote it: the first untrusted address is the client, and anything left of it may be forged.
    /// An entry that is not an address stops the reading at the last hop known.
    public func client(peer: String, forwardedFor: [String]) -> String {
        guard contains(peer) else { return peer }
        var client = peer
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }
        for hop in hops.reversed() {
            guard let address = Self.address(inForwardedElement: hop.trimmingCharacters(in: .whitespaces)) else {
                return client
            }
            client = address
            if !contains(address) { return address }
        }
        return client
    }

    /// What a configuration names wrongly.
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        /// No entry at all.
        case empty
        /// An entry that is not an IP address.
        case notAnAddress(String)
        /// A CIDR suffix that is not a number of bits the address has.
        case badPrefix(String, maximum: Int)

        public var description: String {
            switch self {
            case .empty:
                "name at least one proxy address (the proxies that terminate TLS in front of this server)"
            case .notAnAddress(let entry):
                "\"\(entry)\" is not an IP address or a range like 10.0.0.0/8 (host names are not accepted: a proxy "
                    + "is trusted by the address it connects from)"
            case .badPrefix(let entry, let maximum):
                "\"\(entry)\": the prefix length must be a number from 0 to \(maximum)"
            }
        }
    }

    /// Whether `host`, as `listen.host` names it, is reachable only from this machine.
    public static func isLoopback(host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        guard let bytes = bytes(of: host) else { return false }
        if bytes.count == 4 { return bytes[0] == 127 }
        return bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// The address in one element of `X-Forwarded-For`: an address, `[IPv6]`, or either with a port, as some
    /// proxies write it; normalized, so that it compares and is recorded the same however it was written.
    static func address(inForwardedElement element: String) -> String? {
        var text = Substring(element)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
        } else if text.filter({ $0 == ":" }).count == 1 {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts[1].allSatisfy(\.isNumber), !parts[1].isEmpty else { return nil }
            text = parts[0]
        }
        guard let bytes = bytes(of: String(text)) else { return nil }
        return Self.text(of: bytes)
    }

    /// The 4 or 16 bytes of an IP address; an IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`) as its 4.
    static func bytes(of text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count < 64, text.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            return nil
        }
        var four = in_addr()
        if inet_pton(AF_INET, text, &four) == 1 {
            return withUnsafeBytes(of: &four) { Array($0) }
        }
        var sixteen = in6_addr()
        guard inet_pton(AF_INET6, text, &sixteen) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &sixteen) { Array($0) }
        if bytes.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] { return Array(bytes.suffix(4)) }
        return bytes
    }

    /// The usual text of an address's bytes.
    static func text(of bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let written = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
