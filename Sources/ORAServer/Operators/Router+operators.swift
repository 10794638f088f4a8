import Foundation
import Hummingbird
import ORACore
import ORAStore

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

        // Administrators see who is logged in, and end a session or all of an operator's at once.
        authenticated.get("operators/sessions") { request, context -> Response in
            _ = try await service.require(
                [.administrator, .auditor], of: context.session, toDo: "list operator sessions")
            var sessions = try await service.liveSessions()
            if let name = request.uri.queryParameters.get("operator") {
                let dn = try? DistinguishedName(name)
                sessions = sessions.filter {
                    $0.person.account.lowercased() == name.lowercased()
                        || (dn != nil && (try? DistinguishedName($0.person.dn)) == dn)
                }
            }
            return try Response.encodedJSON(sessions.map(OperatorSessionDocument.init))
        }
        authenticated.post("operators/sessions/:id/revoke") { request, context -> Response in
            let identity = try await service.require(
                [.administrator], of: context.session, toDo: "revoke operator sessions")
            guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
                throw APIError.invalidRequest("the session id must be a UUID")
            }
            let body = try await request.decodeJSON(
                RevokeRequest.self, context: context, expected: #"{"reason"} (optional: {})"#)
            let reason = try body.checkedReason()
            let revoked = try await service.revokeSession(
                id, by: identity.person, reason: reason, source: context.sourceAddress)
            return try Response.encodedJSON([OperatorSessionDocument(revoked)])
        }
        authenticated.post("operators/revoke") { request, context -> Response in
            let identity = try await service.require(
                [.administrator], of: context.session, toDo: "revoke operator sessions")
            let body = try await request.decodeJSON(
                RevokeRequest.self, context: context, expected: #"{"operator": DN or account name, "reason"}"#)
            guard let name = body.operator, !name.isEmpty, AuditText.isBounded(name, to: 1024) else {
                throw APIError.invalidRequest("'operator' must name an operator: their DN or account name")
            }
            let revoked = try await service.revokeSessions(
                of: name, by: identity.person, reason: try body.checkedReason(), source: context.sourceAddress)
            return try Response.encodedJSON(revoked.map(OperatorSessionDocument.init))
        }
    }
}

/// The body of a revocation.
struct RevokeRequest: Decodable {
    var `operator`: String?
    var reason: String?

    /// The reason, when it is one line of at most 200 characters (`AgentProtocol.maximumReportedTextLength`) without
    /// hidden text.
    func checkedReason() throws(APIError) -> String? {
        guard let reason else { return nil }
        guard AuditText.isBounded(reason, to: AgentProtocol.maximumReportedTextLength),
            AgentProtocol.isReportable(reason),
            !AuditText.hasInvisibleFormatting(reason)
        else {
            throw APIError.invalidRequest(
                "the reason must be 1 to \(AgentProtocol.maximumReportedTextLength) characters on one line, without invisible formatting characters"
            )
        }
        return reason
    }
}

/// A live operator session as the API shows it; never its token.
struct OperatorSessionDocument: Encodable {
    var id: String
    var operatorDN: String
    var account: String
    var displayName: String
    var source: String?
    var createdAt: Date
    var expiresAt: Date
    var checkedAt: Date

    init(_ session: OperatorSessionStore.Session) {
        id = session.id.uuidString.lowercased()
        operatorDN = session.person.dn
        account = session.person.account
        displayName = session.person.displayName
        source = session.sourceAddress
        createdAt = session.createdAt
        expiresAt = session.expiresAt
        checkedAt = session.checkedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, account, source
        case operatorDN = "operator_dn"
        case displayName = "display_name"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case checkedAt = "checked_at"
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
