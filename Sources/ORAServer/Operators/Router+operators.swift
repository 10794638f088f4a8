import Foundation
import Hummingbird
import ORACore

/// The JSON body of `POST /api/v1/login`.
struct LoginRequest: Decodable {
    var user: String
    var password: String
}

extension Router where Context == ORARequestContext {
    /// Adds `POST /api/v1/login`, `GET /api/v1/me` and `POST /api/v1/logout`.
    func addOperatorRoutes(service: OperatorService) {
        let api = group("api/v1")
        api.post("login") { request, context -> Response in
            let body = try await request.decodeJSON(
                LoginRequest.self, context: context, expected: #"{"user": "…", "password": "…"}"#)
            let result = try await service.login(
                user: body.user, password: body.password, sourceAddress: context.sourceAddress)
            return try Response.encodedJSON(result)
        }
        let authenticated = api.group().add(middleware: OperatorAuthenticationMiddleware(service: service))
        authenticated.get("me") { _, context -> Response in
            guard let session = context.session else { throw APIError.invalidToken }
            return try Response.encodedJSON(try await service.identity(of: session))
        }
        authenticated.post("logout") { _, context -> Response in
            guard let session = context.session else { throw APIError.invalidToken }
            try await service.logout(session, sourceAddress: context.sourceAddress)
            return Response(status: .noContent)
        }
    }
}

/// Checks `Authorization: Bearer …` and puts the session into the context; 401 without a valid token.
struct OperatorAuthenticationMiddleware: RouterMiddleware {
    typealias Context = ORARequestContext
    let service: OperatorService

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError.invalidToken
        }
        let token = OperatorToken(value: String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
        let session = try await service.session(for: token)
        var context = context
        context.session = session
        return try await next(request, context)
    }
}
