/// Why a message was not sent. Each says what happened in words for the person who asked to send it; none holds
/// the message or a password.
public enum MailError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The SMTP server could not be reached.
    case unreachable(host: String, port: Int, reason: String)
    /// It did not answer in time; `step` says where it stopped.
    case timedOut(step: String)
    /// It closed the connection; `step` says where.
    case closed(step: String)
    /// It answered `step` with a refusal.
    case refused(step: String, code: Int, text: String)
    /// It does not offer STARTTLS, and the settings require it.
    case noStartTLS(host: String)
    /// TLS failed: the certificate is not trusted, names another server, or the handshake broke.
    case tls(String)
    /// It broke the protocol (a reply that is not SMTP, or more than it was asked for after STARTTLS).
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .unreachable(let host, let port, let reason):
            "the mail server \(host):\(port) could not be reached (\(reason))"
        case .timedOut(let step): "the mail server did not answer in time (\(step))"
        case .closed(let step): "the mail server closed the connection (\(step))"
        case .refused(let step, let code, let text):
            "the mail server refused \(step): \(code) \(Self.shortened(text))"
        case .noStartTLS(let host): "the mail server \(host) does not offer STARTTLS, and mail is sent only over TLS"
        case .tls(let reason): "TLS with the mail server failed: \(reason)"
        case .protocolViolation(let reason): "the mail server broke the SMTP protocol: \(reason)"
        }
    }

    /// A reply's text as it may be shown: at most 200 characters, control characters removed.
    static func shortened(_ text: String) -> String {
        let clean = String(
            String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f }))
        return clean.count <= 200 ? clean : String(clean.prefix(199)) + "…"
    }
}
