public import Logging
public import ORACore

extension DirectoryClient {
    /// The longest user name accepted; longer input is refused before it reaches the directory.
    public static let maximumUserNameLength = 256

    /// Logs an operator in: finds exactly one person matching `user` with the service account, then binds as that
    /// person with `password` on a connection of its own. Nothing is cached: every login is a real bind.
    ///
    /// Every reason a login fails for the person (no such user, several matches, wrong password, empty password) is
    /// the same `.invalidCredentials` to the caller, so nobody can find out which accounts exist; the real reason is
    /// logged.
    /// - Parameters:
    ///   - user: what the person typed as their user name.
    ///   - password: their password; never logged.
    /// - Returns: the operator.
    /// - Throws: `.invalidCredentials`, or `.unavailable` when the directory cannot decide.
    public func authenticate(user: String, password: String) async throws(DirectoryError) -> Operator {
        // An empty password is an anonymous bind, which directories answer with success.
        guard !password.isEmpty else { throw reject(user, reason: "empty password") }
        guard !user.isEmpty, user.utf8.count <= Self.maximumUserNameLength else {
            throw reject(user, reason: "empty or over-long user name")
        }
        guard !user.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw reject(user, reason: "control characters in the user name")
        }
        let entries: [LDAPEntry]
        do {
            entries = try await searchPeople(named: user)
        } catch .operationFailed(_, 4, _) {
            throw reject(user, reason: "several matching entries")  // sizeLimitExceeded: more than one match
        } catch {
            throw directoryError(error, doing: "searching for the user")
        }
        guard entries.count == 1, let entry = entries.first else {
            throw reject(user, reason: entries.isEmpty ? "no matching entry" : "several matching entries")
        }
        do {
            try await bind(dn: entry.dn, password: password)
        } catch .invalidCredentials {
            throw reject(user, reason: "wrong password", dn: entry.dn)
        } catch {
            throw directoryError(error, doing: "binding as the user")
        }
        return person(from: entry, typed: user)
    }

    /// Looks a person up by what they would log in with, without their password (for administrators asking what
    /// policy would decide for someone).
    /// - Returns: the person, or `nil` when no single entry matches.
    public func person(named user: String) async throws(DirectoryError) -> Operator? {
        guard !user.isEmpty, user.utf8.count <= Self.maximumUserNameLength,
            !user.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f })
        else { return nil }
        let entries: [LDAPEntry]
        do {
            entries = try await searchPeople(named: user)
        } catch .operationFailed(_, 4, _) {
            return nil
        } catch {
            throw directoryError(error, doing: "searching for a person")
        }
        guard entries.count == 1, let entry = entries.first else { return nil }
        return person(from: entry, typed: user)
    }

    /// At most two entries matching the user filter: enough to tell one from several.
    private func searchPeople(named user: String) async throws(LDAPError) -> [LDAPEntry] {
        let layout = settings.layout
        return try await search(
            base: layout.userBase ?? settings.baseDN,
            scope: .subtree,
            filter: LDAPFilter.fill(layout.userFilter, with: ["user": user]),
            attributes: [layout.accountAttribute, layout.displayNameAttribute, "cn", layout.mailAttribute],
            sizeLimit: 2
        )
    }

    private func person(from entry: LDAPEntry, typed user: String) -> Operator {
        let layout = settings.layout
        let account = entry.value(layout.accountAttribute) ?? user
        return Operator(
            dn: entry.dn,
            account: account,
            displayName: entry.value(layout.displayNameAttribute) ?? entry.value("cn") ?? account,
            mail: entry.value(layout.mailAttribute)
        )
    }

    private func reject(_ user: String, reason: String, dn: String? = nil) -> DirectoryError {
        var metadata: Logger.Metadata = ["login.user": "\(user.debugDescription)", "login.reason": "\(reason)"]
        if let dn { metadata["login.dn"] = "\(dn.debugDescription)" }
        logger.notice("operator login rejected", metadata: metadata)
        return .invalidCredentials
    }

    func directoryError(_ error: LDAPError, doing what: String) -> DirectoryError {
        logger.error(
            "directory error",
            metadata: ["directory.operation": "\(what)", "error": "\(error.description.debugDescription)"])
        switch error {
        case .serverUnreachable, .timedOut, .tlsFailed:
            return .unavailable(reason: error.description)
        case .invalidCredentials:
            // The service account itself was refused: ora cannot read the directory.
            return .unavailable(reason: "the directory refused ora's service account")
        case .invalidURI, .operationFailed:
            return .failed(reason: error.description)
        }
    }
}
