import AsyncHTTPClient
public import Foundation
import HTTPTypes
import NIOCore
import NIOSSL
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Synchronization

extension Client {
    /// A client of the ora server at `server` (`https://host:port`, no path), as the operator `token` when given.
    ///
    /// Every answer outside 2xx is thrown as a ``ServerRefusal`` (inside the runtime's `ClientError`; see
    /// ``ServerRefusal/init(_:)``), so callers only read the success they expect.
    /// - Parameters:
    ///   - caFile: a PEM file of the CA the server's certificate must be signed by (or the server's own certificate),
    ///     instead of the system's CAs.
    ///   - timeout: how long a whole answer may take; long work such as verifying a large audit log passes more.
    public init(server: URL, token: String? = nil, caFile: String? = nil, timeout: Duration = .seconds(30)) {
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        self.init(
            serverURL: server,
            configuration: Configuration(dateTranscoder: RFC3339Transcoder()),
            transport: AsyncHTTPClientTransport(
                configuration: .init(client: Self.httpClient(caFile: caFile), timeout: .nanoseconds(nanoseconds))),
            middlewares: [RefusalMiddleware(), BearerTokenMiddleware(token: token)]
        )
    }
}

extension Client {
    /// The HTTP client every `Client` shares: a connection that cannot be made fails the request at once, with why
    /// (a server that is down, `https://` to a plain HTTP port), instead of being retried until the request's time
    /// runs out. It lives as long as the process.
    static let httpClient = makeHTTPClient(caFile: nil)

    /// The clients that verify the server with a CA file, by file: one each, for the life of the process.
    private static let verifyingClients = Mutex<[String: HTTPClient]>([:])

    /// The shared client that verifies the server with `caFile`, or the system's CAs when nil.
    static func httpClient(caFile: String?) -> HTTPClient {
        guard let caFile else { return httpClient }
        return verifyingClients.withLock { clients in
            if let client = clients[caFile] { return client }
            let client = makeHTTPClient(caFile: caFile)
            clients[caFile] = client
            return client
        }
    }

    private static func makeHTTPClient(caFile: String?) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}

/// The server's answer outside 2xx, in the one error shape of the API.
public struct ServerRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status, such as 403 or 503.
    public var status: Int
    /// The stable code, such as `denied_by_policy`; empty when the answer was not in the error shape.
    public var code: String
    /// What happened, for the person using the client.
    public var message: String
    /// One line per mistake, for an invalid policy set.
    public var errors: [String]
    /// The seconds `Retry-After` asked to wait, on 429.
    public var retryAfter: Int?

    public init(status: Int, code: String, message: String, errors: [String] = [], retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.retryAfter = retryAfter
    }

    /// The refusal inside an error the client threw, or `nil` when the server was not reached or answered nothing
    /// a client of this document understands.
    public init?(_ error: any Error) {
        if let refusal = error as? ServerRefusal {
            self = refusal
        } else if let error = error as? ClientError, let refusal = error.underlyingError as? ServerRefusal {
            self = refusal
        } else {
            return nil
        }
    }

    public var description: String { "HTTP \(status) \(code): \(message)" }
}

/// What went wrong with a call, for the person using the client.
public enum CallFailure: Sendable, CustomStringConvertible {
    /// The server answered outside 2xx.
    case refused(ServerRefusal)
    /// The server could not be reached, or the connection broke before an answer: the cause.
    case unreachable(String)
    /// The server answered something this client does not understand: the cause.
    case notUnderstood(String)

    public init(_ error: any Error) {
        if let refusal = ServerRefusal(error) {
            self = .refused(refusal)
        } else if let error = error as? ClientError {
            self =
                error.response == nil
                ? .unreachable(Self.cause(error.underlyingError)) : .notUnderstood("\(error.underlyingError)")
        } else {
            self = .notUnderstood("\(error)")
        }
    }

    /// Why a connection failed, in words where the library's are cryptic: `https://` to a port that speaks plain
    /// HTTP fails in the TLS handshake with BoringSSL's WRONG_VERSION_NUMBER.
    static func cause(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("WRONG_VERSION_NUMBER") {
            return "the server does not speak TLS on this port (use http://, or the port where it speaks TLS)"
        }
        return text
    }

    public var description: String {
        switch self {
        case .refused(let refusal): refusal.description
        case .unreachable(let cause): "unreachable: \(cause)"
        case .notUnderstood(let cause): "not understood: \(cause)"
        }
    }
}

/// Sends `Authorization: Bearer …` with every request, when there is a token.
struct BearerTokenMiddleware: ClientMiddleware {
    var token: String?

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        if let token { request.headerFields[.authorization] = "Bearer \(token)" }
        return try await next(request, body, baseURL)
    }
}

/// Throws every answer outside 2xx as a ``ServerRefusal``, read from the error shape.
struct RefusalMiddleware: ClientMiddleware {
    /// The operations whose answers outside 2xx are documents of their own: readiness answers 503 with its checks.
    static let answeredInOwnShape: Set<String> = ["readiness"]

    /// The most of an error answer that is read.
    static let limit = 1 << 20

    private struct Shape: Decodable {
        var error: String
        var message: String
        var errors: [String]?
    }

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.kind == .clientError || response.status.kind == .serverError,
            !Self.answeredInOwnShape.contains(operationID)
        else {
            return (response, responseBody)
        }
        var bytes = Data()
        if let responseBody { bytes = try await Data(collecting: responseBody, upTo: Self.limit) }
        let retryAfter = response.headerFields[.retryAfter].flatMap { Int($0) }
        guard let shape = try? JSONDecoder().decode(Shape.self, from: bytes) else {
            throw ServerRefusal(
                status: response.status.code, code: "", message: "the server answered HTTP \(response.status.code)",
                retryAfter: retryAfter)
        }
        throw ServerRefusal(
            status: response.status.code, code: shape.error, message: shape.message, errors: shape.errors ?? [],
            retryAfter: retryAfter)
    }
}
