import Foundation
public import Hummingbird

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

    /// Creates an error answer.
    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = try encoder.encode(["error": code, "message": message])
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
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
    static func databaseUnavailable() -> APIError {
        APIError(
            .serviceUnavailable, code: "database_unavailable",
            message: "the database cannot be reached; nothing is done until it is back")
    }
}
