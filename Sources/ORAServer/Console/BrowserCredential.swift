import Foundation
import HTTPTypes
import Hummingbird

/// The console's credential: the operator's token in a cookie that page scripts cannot read (`HttpOnly`), that
/// browsers send only with requests a page of this same site makes (`SameSite=Strict`), and only over TLS when the
/// console was reached over TLS (`Secure`). Requests it authenticates that change something must also carry an
/// `Origin` of this server (`BrowserOrigin`), so another site can neither read nor use it.
enum BrowserCredential {
    /// The cookie's name.
    static let cookieName = "ora_session"

    /// The `Set-Cookie` value that hands `token` to the browser until `expiresAt`.
    /// - Parameter secure: whether the console was reached over TLS (directly, or through a proxy that says so).
    static func cookie(token: String, expiresAt: Date, now: Date, secure: Bool) -> String {
        let seconds = max(0, Int(expiresAt.timeIntervalSince(now).rounded(.down)))
        return "\(cookieName)=\(token); Path=/; Max-Age=\(seconds); HttpOnly; SameSite=Strict"
            + (secure ? "; Secure" : "")
    }

    /// Hands the token of `login` to the browser in `response`'s cookie, `Secure` when the request came over TLS.
    static func hand(_ login: OperatorService.LoginResult, to response: inout Response, secure: Bool) {
        response.headers[.setCookie] = cookie(
            token: login.token, expiresAt: login.expiresAt, now: Date(), secure: secure)
    }

    /// The `Set-Cookie` value that makes the browser forget the credential.
    static func expiredCookie(secure: Bool) -> String {
        "\(cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// The token the request's `Cookie` headers carry, if any.
    static func token(in cookieHeaders: [String]) -> String? {
        for header in cookieHeaders {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == cookieName else { continue }
                let value = parts[1].trimmingCharacters(in: .whitespaces)
                if !value.isEmpty { return value }
            }
        }
        return nil
    }
}
