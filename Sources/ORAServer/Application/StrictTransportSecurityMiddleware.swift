import HTTPTypes
import Hummingbird

/// With the server's own TLS, every answer says that browsers must come back over HTTPS only, for a year
/// (`Strict-Transport-Security`): a console login is never sent in clear after the first visit.
struct StrictTransportSecurityMiddleware<Context: RequestContext>: RouterMiddleware {
    static var value: String { "max-age=31536000" }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        response.headers[HTTPField.Name("Strict-Transport-Security")!] = Self.value
        return response
    }
}
