public import ORACore

/// Whether a directory account may still be used.
public enum AccountStatus: Sendable, Hashable {
    /// It exists and is not locked or disabled.
    case active
    /// It exists but is locked or disabled; why, in words.
    case disabled(String)
    /// It no longer exists.
    case missing
}

extension DirectoryClient {
    /// Whether the account `dn` exists and is neither locked (OpenLDAP's password policy: `pwdAccountLockedTime`)
    /// nor disabled (Active Directory: `userAccountControl` with ACCOUNTDISABLE or LOCKOUT), read with the service
    /// account and never cached.
    /// - Throws: `.unavailable` when the directory cannot answer.
    public func accountStatus(of dn: DistinguishedName) async throws(DirectoryError) -> AccountStatus {
        let entries: [LDAPEntry]
        do {
            entries = try await search(
                base: dn.original, scope: .base, filter: "(objectClass=*)",
                attributes: ["pwdAccountLockedTime", "userAccountControl"], sizeLimit: 1)
        } catch .operationFailed(_, 32, _) {
            return .missing  // noSuchObject
        } catch {
            throw directoryError(error, doing: "checking an account")
        }
        guard let entry = entries.first else { return .missing }
        if let locked = entry.value("pwdAccountLockedTime") {
            return .disabled("locked by the password policy since \(locked)")
        }
        if let control = entry.value("userAccountControl").flatMap(Int.init) {
            if control & 0x2 != 0 { return .disabled("disabled (userAccountControl ACCOUNTDISABLE)") }
            if control & 0x10 != 0 { return .disabled("locked out (userAccountControl LOCKOUT)") }
        }
        return .active
    }
}
