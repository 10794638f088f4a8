/// The one-time secret an administrator gives to a machine so that its agent can enroll: 256 random bits behind
/// the prefix `ora_enr_`, shown once, stored only as its SHA-256 hash, valid for a limited time and number of
/// uses. It is good for enrolling and nothing else; an operator token is never accepted in its place.
public struct EnrollmentToken: Sendable, Hashable {
    /// What the agent sends when it enrolls.
    public let value: String

    /// The prefix every enrollment token starts with.
    public static let prefix = "ora_enr_"

    /// Wraps a token received from an agent.
    public init(value: String) {
        self.value = value
    }

    /// Generates a new token from the system's CSPRNG.
    public static func generate() -> EnrollmentToken {
        var generator = SystemRandomNumberGenerator()
        return EnrollmentToken(value: SecretToken.generate(prefix: prefix, using: &generator))
    }

    /// The SHA-256 of the token, the only form that is stored.
    public var hash: [UInt8] { SecretToken.hash(value) }

    /// Whether the text has the shape of an enrollment token (prefix and 43 base64url characters).
    public var isWellFormed: Bool { SecretToken.isWellFormed(value, prefix: Self.prefix) }
}
