/// What went wrong talking to the directory, typed so callers can tell a wrong password from an outage.
public enum LDAPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server rejected the DN and password (LDAP result 49).
    case invalidCredentials
    /// No server in the URI list could be reached (refused, unresolvable, or connection lost).
    case serverUnreachable(uris: String, reason: String)
    /// TLS could not be set up: StartTLS refused, or the server's certificate not trusted.
    case tlsFailed(uris: String, reason: String)
    /// The server accepted the connection but did not answer the operation in time.
    case timedOut(operation: String, after: Duration)
    /// A URI in the configuration is not an LDAP URI libldap understands.
    case invalidURI(String)
    /// Any other result code, with the server's diagnostic message when it gave one.
    case operationFailed(operation: String, code: Int32, message: String)

    public var description: String {
        switch self {
        case .invalidCredentials:
            return "invalid credentials"
        case .serverUnreachable(let uris, let reason):
            return "directory unreachable at \(uris): \(reason)"
        case .tlsFailed(let uris, let reason):
            return "TLS with the directory at \(uris) failed: \(reason)"
        case .timedOut(let operation, let after):
            return "directory did not answer the \(operation) within \(after)"
        case .invalidURI(let uri):
            return "not a valid LDAP URI: \(uri)"
        case .operationFailed(let operation, let code, let message):
            return "directory \(operation) failed: \(message) (LDAP result \(code))"
        }
    }

    /// Whether the error means the directory is unavailable, as opposed to a problem with the request.
    public var isUnavailable: Bool {
        switch self {
        case .serverUnreachable, .timedOut, .tlsFailed: return true
        case .invalidCredentials, .invalidURI, .operationFailed: return false
        }
    }
}
