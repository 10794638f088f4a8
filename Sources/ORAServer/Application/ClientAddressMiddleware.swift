import HTTPTypes
import Hummingbird

/// Says who a request came from and whether it crossed the network encrypted, before anything else reads it: with
/// the server's own TLS, every request did; behind a trusted proxy (`listen.behind_proxy`), the proxy's
/// `X-Forwarded-For` names the client and its `X-Forwarded-Proto` whether the client used TLS. From any other peer
/// those headers are ignored, so nobody picks the address that login limits and the audit log see.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = ORARequestContext

    /// The proxies in front, nil when clients connect directly.
    let proxies: TrustedProxies?
    /// Whether the server has its own TLS.
    let ownTLS: Bool

    func handle(
        _ request: Request, context: ORARequestContext,
        next: (Request, ORARequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.overTLS = ownTLS
        if let proxies, let peer = context.remoteAddress?.ipAddress, proxies.contains(peer) {
            context.forwardedClient = proxies.client(
                peer: peer, forwardedFor: request.headers[values: HTTPField.Name.xForwardedFor])
            context.overTLS =
                ownTLS
                || request.headers[HTTPField.Name.xForwardedProto].map { $0.lowercased() == "https" } ?? false
        }
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    /// The addresses a request came through, appended to by each proxy.
    static var xForwardedFor: Self { .init("X-Forwarded-For")! }
    /// The scheme the client used to reach the proxy.
    static var xForwardedProto: Self { .init("X-Forwarded-Proto")! }
}
