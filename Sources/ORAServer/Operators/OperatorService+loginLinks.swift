import Foundation
import Logging
import ORACore
import ORAStore

extension OperatorService {
    /// A login link made for `ora open`: its code, for the link's fragment, and when it stops working.
    struct LoginLink: Sendable {
        var code: LoginLinkCode
        var expiresAt: Date
    }

    /// Makes a single-use login link that logs a browser in as `session`'s operator and opens `target`.
    /// - Throws: `OperatorError.invalidRequest` when `target` is not a console page (`LoginLinkCode.isConsolePage`),
    ///   `.databaseUnavailable` when it cannot be stored.
    func makeLoginLink(for session: AuthenticatedSession, target: String) async throws(OperatorError) -> LoginLink {
        guard LoginLinkCode.isConsolePage(target) else {
            throw .invalidRequest("'target' must be a page of the console: /, /machines, /sessions or /sessions/{id}")
        }
        let code = LoginLinkCode.generate()
        let expiresAt = min(session.expiresAt, clock.now().addingTimeInterval(LoginLinkCode.lifetime.timeInterval))
        do {
            try await withTimeout(settings.databaseTimeout) { [store] in
                try await store.createLoginLink(
                    codeHash: code.hash, session: session.id, target: target, expiresAt: expiresAt)
            }
        } catch {
            logger.error(
                "could not store a login link", metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            throw .databaseUnavailable
        }
        return LoginLink(code: code, expiresAt: expiresAt)
    }

    /// Uses up a login link: a new session for the operator of the session that made it, lasting no longer than
    /// that one, recorded as `operator.login` (`method: link`) before it exists.
    /// - Returns: the new session's login and the page the link opens.
    /// - Throws: `OperatorError.invalidLoginLink` for a code that is malformed, unknown, used, expired, or whose
    ///   session has ended; `.databaseUnavailable`, `.auditUnavailable`.
    func redeemLoginLink(
        _ code: LoginLinkCode, sourceAddress: String
    ) async throws(OperatorError) -> (login: LoginResult, target: String) {
        guard code.isWellFormed else { throw .invalidLoginLink }
        let found: (session: OperatorSessionStore.Session, target: String)?
        do {
            found = try await withTimeout(settings.databaseTimeout) { [store] in
                try await store.redeemLoginLink(codeHash: code.hash)
            }
        } catch {
            logger.error(
                "could not look up a login link", metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            throw .databaseUnavailable
        }
        guard let (origin, target) = found else { throw .invalidLoginLink }
        let expiresAt = min(origin.expiresAt, clock.now().addingTimeInterval(settings.sessionLifetime.timeInterval))
        let login = try await startSession(
            for: origin.person, until: expiresAt, from: sourceAddress, idleTimeout: settings.consoleIdleTimeout,
            details: ["method": .string("link"), "from_session": .string(origin.id.uuidString.lowercased())])
        return (login, target)
    }
}
