import Foundation
import Logging
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
    ///   - admit: asked with the person's DN once they are found, before their password is tried; `false` refuses
    ///     the login as `.invalidCredentials` without a bind (the caller's limits keyed on the person).
    /// - Throws: `.invalidCredentials`, or `.unavailable` when the directory cannot decide.
    public func authenticate(
        user: String, password: String, admitting admit: (_ dn: String) -> Bool = { _ in true }
    ) async throws(DirectoryError) -> Operator {
        // An empty password is an anonymous bind, which directories answer with success.
        guard !password.isEmpty else { throw reject(user, reason: "empty password") }
        let (found, reason) = try await findPerson(named: user)
        guard let entry = found else { throw reject(user, reason: reason) }
        guard admit(entry.dn) else { throw reject(user, reason: "too many failed logins", dn: entry.dn) }
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
        try await findPerson(named: user).entry.map { person(from: $0, typed: user) }
    }

    /// The person whose e-mail address is `address` (compared as the directory compares the mail attribute), for
    /// mail sent to a directory user.
    /// - Returns: the person, or `nil` when no single entry has that address.
    public func person(withMail address: String) async throws(DirectoryError) -> Operator? {
        guard Self.isAcceptableName(address) else { return nil }
        let layout = settings.layout
        let entries: [LDAPEntry]
        do {
            entries = try await search(
                base: layout.userBase ?? settings.baseDN,
                scope: .subtree,
                filter: "(\(layout.mailAttribute)=\(LDAPFilter.escape(address)))",
                attributes: personAttributes,
                sizeLimit: 2
            )
        } catch .operationFailed(_, 4, _) {
            return nil  // several entries with the address: none of them is the one
        } catch {
            throw directoryError(error, doing: "searching for a person by e-mail address")
        }
        guard entries.count == 1 else { return nil }
        return person(from: entries[0], typed: address)
    }

    /// Whether `name` may be looked up at all: not empty, not over-long, no control characters.
    static func isAcceptableName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maximumUserNameLength
            && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    /// The one entry matching the user filter, or why there is none.
    private func findPerson(named user: String) async throws(DirectoryError) -> (entry: LDAPEntry?, reason: String) {
        guard Self.isAcceptableName(user) else { return (nil, "not an acceptable user name") }
        let layout = settings.layout
        let entries: [LDAPEntry]
        do {
            // At most two entries: enough to tell one from several.
            entries = try await search(
                base: layout.userBase ?? settings.baseDN,
                scope: .subtree,
                filter: LDAPFilter.fill(layout.userFilter, with: ["user": user]),
                attributes: personAttributes,
                sizeLimit: 2
            )
        } catch .operationFailed(_, 4, _) {
            return (nil, "several matching entries")  // sizeLimitExceeded: more than one match
        } catch {
            throw directoryError(error, doing: "searching for a person")
        }
        switch entries.count {
        case 1: return (entries[0], "")
        case 0: return (nil, "no matching entry")
        default: return (nil, "several matching entries")
        }
    }

    /// The attributes a person is read with.
    private var personAttributes: [String] {
        let layout = settings.layout
        return [
            layout.accountAttribute, layout.displayNameAttribute, "cn", layout.mailAttribute, layout.titleAttribute,
            layout.departmentAttribute,
        ]
    }

    private func person(from entry: LDAPEntry, typed user: String) -> Operator {
        let layout = settings.layout
        let account = entry.value(layout.accountAttribute) ?? user
        return Operator(
            dn: entry.dn,
            account: account,
            displayName: entry.value(layout.displayNameAttribute) ?? entry.value("cn") ?? account,
            mail: entry.value(layout.mailAttribute),
            title: Self.shortText(entry.value(layout.titleAttribute)),
            department: Self.shortText(entry.value(layout.departmentAttribute))
        )
    }

    /// A title or department as it may be shown: trimmed, at most 200 characters; `nil` for none or an empty one.
    static func shortText(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value.count <= 200 ? value : String(value.prefix(199)) + "…"
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
        if case .invalidCredentials = error {
            // The service account itself was refused: ora cannot read the directory.
            return .unavailable(reason: "the directory refused ora's service account")
        }
        return error.isUnavailable ? .unavailable(reason: error.description) : .failed(reason: error.description)
    }
}
