public import Foundation

/// The secret of a one-time login link (`ora open`): 256 random bits behind the prefix `ora_link_`, handed to the
/// browser in the link's fragment (which browsers never send to a server), stored only as its SHA-256, good for one
/// login within a minute, as the operator session that made it. It is not an operator token and is never accepted
/// as one.
public struct LoginLinkCode: Sendable, Hashable {
    /// The code as the link carries it.
    public let value: String

    /// The prefix every login link code starts with.
    public static let prefix = "ora_link_"
    /// How long a link works after it was made.
    public static let lifetime: Duration = .seconds(60)

    /// Wraps a code received from a browser.
    public init(value: String) {
        self.value = value
    }

    /// Generates a new code from `generator`, which must be cryptographically secure in production.
    public static func generate(using generator: inout some RandomNumberGenerator) -> LoginLinkCode {
        LoginLinkCode(value: SecretToken.generate(prefix: prefix, using: &generator))
    }

    /// Generates a new code from the system's CSPRNG.
    public static func generate() -> LoginLinkCode {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    /// The SHA-256 of the code, the only form that is stored.
    public var hash: [UInt8] { SecretToken.hash(value) }

    /// Whether the text has the shape of a login link code (prefix and 43 base64url characters).
    public var isWellFormed: Bool { SecretToken.isWellFormed(value, prefix: Self.prefix) }

    /// Whether `path` is a console page a link may open: `/`, `/machines`, `/sessions` or `/sessions/{id}` with a
    /// UUID. Nothing else, so that a link cannot send the browser anywhere its maker chose.
    public static func isConsolePage(_ path: String) -> Bool {
        switch path {
        case "/", "/machines", "/sessions": return true
        default:
            guard path.hasPrefix("/sessions/") else { return false }
            return UUID(uuidString: String(path.dropFirst("/sessions/".count))) != nil
        }
    }
}
