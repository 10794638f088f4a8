public import ORACore

/// Where and how the server sends e-mail: one SMTP server (the company's relay), reached with STARTTLS and a
/// verified certificate unless the configuration says otherwise.
public struct SMTPSettings: Sendable, Hashable {
    /// How the connection to the SMTP server is protected.
    public enum Security: String, Sendable, Hashable, CaseIterable {
        /// Plain at first, then TLS before anything is said but the greeting (`STARTTLS`); a server that does not
        /// offer it is refused.
        case startTLS = "starttls"
        /// No TLS at all: only for a relay on this host (the configuration refuses another).
        case none
    }

    /// The SMTP server's name or address.
    public var host: String
    /// Its port: 587 (submission) by default.
    public var port: Int
    /// How the connection is protected.
    public var security: Security
    /// A PEM file of the CA certificates to trust; the system's trust store when `nil`.
    public var caFile: String?
    /// Whether the server's certificate and name are verified (only a test relay may do without).
    public var verifyCertificates: Bool
    /// The account to log in with (`AUTH PLAIN`, only over TLS); none when `nil`.
    public var username: String?
    /// Its password.
    public var password: String?
    /// The address mail comes from.
    public var from: MailAddress
    /// The name shown with it.
    public var fromName: String
    /// The name this server gives itself in `EHLO`.
    public var helloName: String
    /// How long one message may take to send, from connecting to the last reply.
    public var timeout: Duration

    /// Creates settings.
    public init(
        host: String, port: Int = 587, security: Security = .startTLS, caFile: String? = nil,
        verifyCertificates: Bool = true, username: String? = nil, password: String? = nil, from: MailAddress,
        fromName: String = "ora remote assistance", helloName: String = "localhost", timeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.caFile = caFile
        self.verifyCertificates = verifyCertificates
        self.username = username
        self.password = password
        self.from = from
        self.fromName = fromName
        self.helloName = helloName
        self.timeout = timeout
    }

    /// What an operator should know about these settings before trusting them: each a sentence for the log.
    public var securityWarnings: [String] {
        var warnings: [String] = []
        if security == .none {
            warnings.append("mail.security is none: invitations are sent to \(host) without TLS")
        }
        if security == .startTLS, !verifyCertificates {
            warnings.append("mail.verify_certificates is false: any server can pose as \(host) and read invitations")
        }
        return warnings
    }
}
