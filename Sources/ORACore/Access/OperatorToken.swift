import Crypto

/// The bearer token an operator gets at login: 256 random bits, shown to the operator once, stored only as its
/// SHA-256 hash.
public struct OperatorToken: Sendable, Hashable {
    /// What the operator sends in `Authorization: Bearer …`.
    public let value: String

    /// The prefix every ora operator token starts with, so leaked tokens are easy to recognise in logs and scanners.
    public static let prefix = "ora_op_"

    /// Wraps a token received from a client.
    public init(value: String) {
        self.value = value
    }

    /// Generates a new token from `generator`, which must be cryptographically secure in production
    /// (`SystemRandomNumberGenerator` reads the kernel's CSPRNG).
    public static func generate(using generator: inout some RandomNumberGenerator) -> OperatorToken {
        OperatorToken(value: SecretToken.generate(prefix: prefix, using: &generator))
    }

    /// Generates a new token from the system's CSPRNG.
    public static func generate() -> OperatorToken {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    /// The SHA-256 of the token, the only form that is stored.
    public var hash: [UInt8] { SecretToken.hash(value) }

    /// Whether the text has the shape of an ora operator token (prefix and 43 base64url characters).
    public var isWellFormed: Bool { SecretToken.isWellFormed(value, prefix: Self.prefix) }
}

/// What every kind of ora secret token shares: 256 random bits after a prefix that names its one purpose, kept
/// only as a SHA-256 hash.
enum SecretToken {
    static func generate(prefix: String, using generator: inout some RandomNumberGenerator) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for _ in 0..<4 {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        return prefix + Base64URL.encode(bytes)
    }

    static func hash(_ value: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(value.utf8)))
    }

    static func isWellFormed(_ value: String, prefix: String) -> Bool {
        guard value.hasPrefix(prefix) else { return false }
        let body = value.dropFirst(prefix.count)
        return body.count == 43 && body.unicodeScalars.allSatisfy(Base64URL.isAlphabet)
    }
}

/// Base64 with the URL-safe alphabet and no padding (RFC 4648 §5).
enum Base64URL {
    private static let alphabet = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".unicodeScalars)

    static func isAlphabet(_ scalar: Unicode.Scalar) -> Bool { alphabet.contains(scalar) }

    static func encode(_ bytes: [UInt8]) -> String {
        var result = String.UnicodeScalarView()
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * $1.offset) }
            for position in 0...chunk.count {
                result.append(alphabet[Int((value >> (18 - 6 * position)) & 0x3f)])
            }
            index += 3
        }
        return String(result)
    }
}
