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
    /// Adds `POST /api/v1/login`, `POST /api/v1/login/browser`, `GET /api/v1/me` and `POST /api/v1/logout`.
    func addOperatorRoutes(service: OperatorService) {
        let api = group("api/v1")
        api.post("login") { request, context -> Response in
            let body = try await request.decodeJSON(
                LoginRequest.self, context: context, expected: #"{"user": "…", "password": "…"}"#)
            let result = try await service.login(
                user: body.user, password: body.password, sourceAddress: context.sourceAddress)
            return try Response.encodedJSON(result)
        }
        // The console's login: the token goes into a cookie scripts cannot read, never into the answer. Only a page
        // of this server may ask, so that another site cannot log a browser in under its own account.
        api.post("login/browser") { request, context -> Response in
            try OperatorAuthenticationMiddleware.requirePage(request, names: service.settings.browserNames)
            let body = try await request.decodeJSON(
                LoginRequest.self, context: context, expected: #"{"user": "…", "password": "…"}"#)
            let result = try await service.login(
                user: body.user, password: body.password, sourceAddress: context.sourceAddress,
                idleTimeout: service.settings.consoleIdleTimeout)
            var response = try Response.encodedJSON(BrowserLoginResult(result))
            BrowserCredential.hand(result, to: &response, secure: context.overTLS)
            return response
        }
        // A login link from `ora open`, used once by the console's page at /login/link.
        api.post("login/link") { request, context -> Response in
            try OperatorAuthenticationMiddleware.requirePage(request, names: service.settings.browserNames)
            let body = try await request.decodeJSON(LoginLinkRequest.self, context: context, expected: #"{"code"}"#)
            let (result, target) = try await service.redeemLoginLink(
                LoginLinkCode(value: body.code), sourceAddress: context.sourceAddress)
            var response = try Response.encodedJSON(BrowserLoginResult(result, target: target))
            BrowserCredential.hand(result, to: &response, secure: context.overTLS)
            return response
        }
        let authenticated = api.group().add(middleware: OperatorAuthenticationMiddleware(service: service))
        authenticated.post("login/links") { request, context -> Response in
            guard let session = context.session else { throw APIError.invalidToken }
            let body = try await request.decodeJSON(
                LoginLinksRequest.self, context: context, expected: #"{"target": "/sessions/…"} (optional: {})"#)
            let link = try await service.makeLoginLink(for: session, target: body.target ?? "/")
            return try Response.encodedJSON(
                LoginLinkDocument(path: "/login/link#" + link.code.value, expiresAt: link.expiresAt), status: .created)
        }
        authenticated.get("me") { _, context -> Response in
            guard let session = context.session else { throw APIError.invalidToken }
            return try Response.encodedJSON(try await service.identity(of: session))
        }
        authenticated.post("logout") { _, context -> Response in
            guard let session = context.session else { throw APIError.invalidToken }
            try await service.logout(session, sourceAddress: context.sourceAddress)
            var response = Response(status: .noContent)
            if context.authenticatedByCookie {
                response.headers[.setCookie] = BrowserCredential.expiredCookie(secure: context.overTLS)
            }
            return response
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
            let id = try context.id(of: "session")
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

/// The answer to the console's login: who, and until when; the token itself stays in the cookie. After a login
/// link, also the page it opens.
struct BrowserLoginResult: Encodable {
    var person: Operator
    var expiresAt: Date
    var target: String?

    init(_ login: OperatorService.LoginResult, target: String? = nil) {
        person = login.person
        expiresAt = login.expiresAt
        self.target = target
    }

    enum CodingKeys: String, CodingKey {
        case person = "operator"
        case expiresAt = "expires_at"
        case target
    }
}

/// The body of `POST /api/v1/login/links`.
struct LoginLinksRequest: Decodable {
    var target: String?
}

/// The body of `POST /api/v1/login/link`.
struct LoginLinkRequest: Decodable {
    var code: String
}

/// A login link as `POST /api/v1/login/links` answers it.
struct LoginLinkDocument: Encodable {
    var path: String
    var expiresAt: Date

    enum CodingKeys: String, CodingKey {
        case path
        case expiresAt = "expires_at"
    }
}

/// Checks the operator's token and puts the session into the context; 401 without a valid one. The token comes
/// from `Authorization: Bearer …` (the CLI, scripts) or from the console's cookie (`BrowserCredential`); a request
/// that the cookie authenticates and that changes something must come from a page of this server, else 403
/// `cross_site_request`.
struct OperatorAuthenticationMiddleware: RouterMiddleware {
    typealias Context = ORARequestContext
    let service: OperatorService

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let token: OperatorToken
        var byCookie = false
        if let header = request.headers[.authorization] {
            guard header.hasPrefix("Bearer ") else { throw APIError.invalidToken }
            token = OperatorToken(value: String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
        } else if let value = BrowserCredential.token(in: request.headers[values: .cookie]) {
            if ![.get, .head].contains(request.method) {
                try Self.requirePage(request, names: service.settings.browserNames)
            }
            token = OperatorToken(value: value)
            byCookie = true
        } else {
            throw APIError.invalidToken
        }
        let session = try await service.session(for: token)
        var context = context
        context.session = session
        context.authenticatedByCookie = byCookie
        return try await next(request, context)
    }

    /// Refuses (403 `cross_site_request`) a request that does not carry the `Origin` of a page of this server.
    static func requirePage(_ request: Request, names: [String]) throws(APIError) {
        guard let origin = request.headers[.origin],
            BrowserOrigin.isPage(origin: origin, host: request.head.authority, names: names)
        else {
            throw APIError(
                .forbidden, code: "cross_site_request",
                message: "the request does not come from a page of this server (its Origin is "
                    + (request.headers[.origin].map { "'\(AuditText.escaped($0))'" } ?? "missing") + ")")
        }
    }
}
