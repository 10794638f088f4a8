public import Hummingbird
public import ORADirectory

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

    /// The answer for a service's error: the one place where a kind of failure becomes an HTTP status.
    public init(_ error: some ServiceError) {
        var headers: HTTPFields = [:]
        let status: HTTPResponse.Status
        switch error.kind {
        case .invalid: status = .badRequest
        case .invalidContent: status = .unprocessableContent
        case .unauthenticated: status = .unauthorized
        case .notLoggedIn:
            status = .unauthorized
            headers[.wwwAuthenticate] = "Bearer realm=\"ora\""
        case .forbidden: status = .forbidden
        case .notFound: status = .notFound
        case .conflict: status = .conflict
        case .limited(let retryAfter):
            status = .tooManyRequests
            // Whole seconds, rounded up: a client told to wait must not come back too early.
            let (seconds, fraction) = retryAfter.components
            headers[.retryAfter] = String(max(1, seconds + (fraction > 0 ? 1 : 0)))
        case .unavailable: status = .serviceUnavailable
        case .unusableDirectoryAnswer: status = .badGateway
        case .internal: status = .internalServerError
        }
        self.init(status, code: error.code, message: error.message, headers: headers, errors: error.mistakes)
    }

    /// 400 `invalid_request`, saying what was wrong with the request.
    static func invalidRequest(_ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_request", message: message)
    }
    /// 401 `invalid_token`, for a request that needs a login and has none.
    static let invalidToken = APIError(OperatorError.notLoggedIn)
}

/// Each service's errors answer as `APIError(_:)` makes them.
extension HTTPResponseError where Self: ServiceError {
    public var status: HTTPResponse.Status { APIError(self).status }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try APIError(self).response(from: request, context: context)
    }
}

extension DirectoryError: HTTPResponseError {}
extension AgentError: HTTPResponseError {}
extension OperatorError: HTTPResponseError {}
extension SessionError: HTTPResponseError {}
extension ScreenError: HTTPResponseError {}
extension PolicyError: HTTPResponseError {}
extension AuditServiceError: HTTPResponseError {}
