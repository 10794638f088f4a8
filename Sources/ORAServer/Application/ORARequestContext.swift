public import Foundation
public import Hummingbird
public import NIOCore
public import ORACore

/// The context of every request ora-server handles: Hummingbird's core, the client's address (for rate limiting
/// and the record of logins), and the operator once a token has been checked.
public struct ORARequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer.
    public let remoteAddress: SocketAddress?
    /// The operator whose token authenticated the request, set by `OperatorAuthenticationMiddleware`.
    public var session: AuthenticatedSession?
    /// Whether the token came from the console's cookie rather than an `Authorization` header.
    public var authenticatedByCookie: Bool
    /// The client behind a trusted proxy, set by `ClientAddressMiddleware` from `X-Forwarded-For`.
    public var forwardedClient: String?
    /// Whether the request reached this server, or the trusted proxy in front of it, over TLS; set by
    /// `ClientAddressMiddleware`.
    public var overTLS: Bool

    /// Creates the context for a request arriving on `source`'s channel.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.session = nil
        self.authenticatedByCookie = false
        self.forwardedClient = nil
        self.overTLS = false
    }

    /// The client's IP address as text, for records and limits: the TCP peer, or behind a trusted proxy the client
    /// it names.
    public var sourceAddress: String {
        forwardedClient ?? remoteAddress?.ipAddress ?? "unknown"
    }

    /// The `:id` path parameter as the id (a UUID) of `what`.
    /// - Throws: 400 `invalid_request` ("the token id must be a UUID") when it is not one.
    func id(of what: String) throws(APIError) -> UUID {
        guard let id = parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw APIError.invalidRequest("the \(what) id must be a UUID")
        }
        return id
    }
}

/// An operator authenticated by their bearer token.
public struct AuthenticatedSession: Sendable {
    /// The session's id (not its token).
    public var id: UUID
    /// Who.
    public var person: Operator
    /// The token that proved it.
    public var token: OperatorToken
    /// When the session ends.
    public var expiresAt: Date
}
