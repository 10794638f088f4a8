public import Foundation
public import ORACore
public import ORADirectory

/// Why `OperatorService` refused: logins, operator sessions and roles.
public enum OperatorError: ServiceError, Equatable {
    /// A value in the request cannot be anyone's name or password, or is malformed; says which.
    case invalidRequest(String)
    /// The user name or password is wrong, or the account may not be used.
    case invalidCredentials
    /// No valid login: no token, or one that is unknown, expired or ended.
    case notLoggedIn
    /// Too many failed logins; the next may come after this many seconds.
    case tooManyAttempts(retryAfterSeconds: Int)
    /// Only an operator with one of these roles may do `action`.
    case requiresRole([OperatorRole], action: String)
    /// A login link that is unknown, used already, expired, or whose session has ended.
    case invalidLoginLink
    /// No live operator session has this id.
    case unknownOperatorSession(UUID)
    /// The operator's DN, as stored, is not a DN.
    case invalidOperatorDN
    /// The directory could not answer.
    case directory(DirectoryError)
    /// The database could not be reached (the cause is in the server's log).
    case databaseUnavailable
    /// The audit log could not record the action, so it was not performed.
    case auditUnavailable

    public var code: String {
        switch self {
        case .invalidRequest: "invalid_request"
        case .invalidCredentials: "invalid_credentials"
        case .notLoggedIn: "invalid_token"
        case .tooManyAttempts: "too_many_attempts"
        case .requiresRole: "forbidden"
        case .invalidLoginLink: "invalid_login_link"
        case .unknownOperatorSession: "unknown_operator_session"
        case .invalidOperatorDN: "invalid_operator"
        case .directory(let error): error.code
        case .databaseUnavailable: "database_unavailable"
        case .auditUnavailable: "audit_unavailable"
        }
    }

    public var message: String {
        switch self {
        case .invalidRequest(let message): message
        case .invalidCredentials: "invalid user name or password"
        case .notLoggedIn: "not logged in, or the session expired or was ended"
        case .tooManyAttempts(let seconds): "too many failed logins; try again in \(seconds) seconds"
        case .requiresRole(let roles, let action):
            "only an \(roles.sorted().map(\.rawValue).joined(separator: " or ")) may \(action)"
        case .invalidLoginLink:
            "this login link is unknown, was used already or has expired (links work once, for a minute); run ora open again"
        case .unknownOperatorSession(let id): "no live operator session \(id.uuidString.lowercased())"
        case .invalidOperatorDN: "the operator's DN is not valid"
        case .directory(let error): error.message
        case .databaseUnavailable: CommonFailure.databaseUnavailable
        case .auditUnavailable: CommonFailure.auditUnavailable
        }
    }

    public var kind: ServiceErrorKind {
        switch self {
        case .invalidRequest: .invalid
        case .invalidCredentials, .invalidLoginLink: .unauthenticated
        case .notLoggedIn: .notLoggedIn
        case .tooManyAttempts(let seconds): .limited(retryAfter: .seconds(seconds))
        case .requiresRole: .forbidden
        case .unknownOperatorSession: .notFound
        case .invalidOperatorDN: .internal
        case .directory(let error): error.kind
        case .databaseUnavailable, .auditUnavailable: .unavailable
        }
    }
}
