public import Hummingbird
import Logging
import ORADirectory
import ORAStore

/// An error answer of the JSON API: an HTTP status, a stable machine-readable code and a sentence for people.
public struct APIError: Error, HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A stable code clients can act on, such as `invalid_credentials` or `directory_unavailable`.
    public var code: String
    /// What happened, for the person using the client.
    public var message: String
    /// Extra headers, such as `Retry-After`.
    public var headers: HTTPFields
    /// One line per mistake, when the request had several (an invalid policy set).
    public var errors: [String]

    /// Creates an error answer.
    public init(
        _ status: HTTPResponse.Status,
        code: String,
        message: String,
        headers: HTTPFields = [:],
        errors: [String] = []
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.errors = errors
    }

    private struct Body: Encodable {
        var error: String
        var message: String
        var errors: [String]?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try Response.encodedJSON(
            Body(error: code, message: message, errors: errors.isEmpty ? nil : errors), status: status, headers: headers
        )
    }

    /// 400 `invalid_request`, saying what was wrong with the request.
    static func invalidRequest(_ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_request", message: message)
    }
    static let invalidCredentials = APIError(
        .unauthorized, code: "invalid_credentials", message: "invalid user name or password")
    static let invalidToken = APIError(
        .unauthorized, code: "invalid_token", message: "not logged in, or the session expired or was ended",
        headers: [.wwwAuthenticate: "Bearer realm=\"ora\""])
    static func directoryUnavailable() -> APIError {
        APIError(
            .serviceUnavailable, code: "directory_unavailable",
            message: "the directory cannot be reached; nothing can be decided until it is back")
    }
    /// The answer for a directory that could not answer: 503 when it is unavailable, 502 when it answered in a
    /// way ora cannot use (a misconfiguration or a bound exceeded).
    static func directory(_ error: DirectoryError) -> APIError {
        switch error {
        case .invalidCredentials: return invalidCredentials
        case .unavailable: return directoryUnavailable()
        case .failed(let reason):
            return APIError(
                .badGateway, code: "directory_error", message: "the directory's answer cannot be used: \(reason)")
        }
    }
    static func auditUnavailable() -> APIError {
        APIError(
            .serviceUnavailable, code: "audit_unavailable",
            message: "audit log unavailable: the action was not performed because it could not be recorded")
    }
    static func databaseUnavailable() -> APIError {
        APIError(
            .serviceUnavailable, code: "database_unavailable",
            message: "the database cannot be reached; nothing is done until it is back")
    }
    /// `databaseUnavailable()`, with the failure logged for the server's operators (the client is not told why).
    /// - Parameter action: what was being done, such as "revoking a machine".
    static func databaseUnavailable(_ error: any Error, doing action: String, logger: Logger) -> APIError {
        logger.error(
            "database failed",
            metadata: ["action": "\(action)", "error": "\(DatabaseErrorDescription.describe(error))"])
        return databaseUnavailable()
    }
}
