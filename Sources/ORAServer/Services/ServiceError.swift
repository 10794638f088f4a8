import Logging
public import ORADirectory
import ORAStore

/// What kind of refusal or failure a service's error is. The services say what happened; the HTTP edge
/// (`APIError.init(_:)`) alone decides what status that is.
public enum ServiceErrorKind: Sendable, Hashable, Codable {
    /// The request itself is wrong: a value out of range, a malformed name, text that cannot be shown.
    case invalid
    /// The request is well formed, but what it carries has mistakes (a policy set), listed in `mistakes`.
    case invalidContent
    /// The credentials given are wrong.
    case unauthenticated
    /// Nobody is logged in: no token, or one that is unknown, expired or ended.
    case notLoggedIn
    /// The person asking may not do this.
    case forbidden
    /// What the request names does not exist (or is not visible to the person asking).
    case notFound
    /// It cannot be done in the present state of things (a machine offline, a session ended).
    case conflict
    /// Asked too often; it may be asked again after `retryAfter`.
    case limited(retryAfter: Duration)
    /// Something it depends on (the directory, the database, the audit log, another replica) cannot be reached,
    /// so nothing was done.
    case unavailable
    /// The directory answered in a way that cannot be used (a misconfiguration or a bound exceeded).
    case unusableDirectoryAnswer
    /// A fault of ora itself.
    case `internal`
}

/// An error a service gives the person who asked: each service has its own closed set of cases, and every case
/// has a stable code that clients and the audit log can act on, a sentence for people, and its kind.
public protocol ServiceError: Error, Sendable, CustomStringConvertible {
    /// A stable code, such as `machine_offline` or `directory_unavailable`.
    var code: String { get }
    /// What happened, for the person using the client.
    var message: String { get }
    /// What kind of failure it is.
    var kind: ServiceErrorKind { get }
    /// One line per mistake, when the request had several (an invalid policy set).
    var mistakes: [String] { get }
}

extension ServiceError {
    public var mistakes: [String] { [] }
    public var description: String { message }
}

/// The sentences shared by the failures every service can meet.
enum CommonFailure {
    static let directoryUnavailable = "the directory cannot be reached; nothing can be decided until it is back"
    static let databaseUnavailable = "the database cannot be reached; nothing is done until it is back"
    static let auditUnavailable =
        "audit log unavailable: the action was not performed because it could not be recorded"
}

extension DirectoryError: ServiceError {
    public var code: String {
        switch self {
        case .invalidCredentials: "invalid_credentials"
        case .unavailable: "directory_unavailable"
        case .failed: "directory_error"
        }
    }

    public var message: String {
        switch self {
        case .invalidCredentials: "invalid user name or password"
        case .unavailable: CommonFailure.directoryUnavailable
        case .failed(let reason): "the directory's answer cannot be used: \(reason)"
        }
    }

    public var kind: ServiceErrorKind {
        switch self {
        case .invalidCredentials: .unauthenticated
        case .unavailable: .unavailable
        case .failed: .unusableDirectoryAnswer
        }
    }
}

/// Logs a database failure for the server's operators; the person asking is told only that the database is
/// unavailable.
/// - Parameter action: what was being done, such as "revoking a machine".
func logDatabaseFailure(_ error: any Error, doing action: String, logger: Logger) {
    logger.error(
        "database failed", metadata: ["action": "\(action)", "error": "\(DatabaseErrorDescription.describe(error))"])
}
