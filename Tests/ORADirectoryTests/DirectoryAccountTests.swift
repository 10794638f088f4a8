import ORACore
import ORADirectory
import ORATestSupport
import Testing

/// Whether an account may still be used, read from a directory of the test's own.
@Suite("Account status")
struct DirectoryAccountTests {
    @Test("active, locked by the password policy, disabled or locked out in Active Directory, and gone")
    func status() async throws {
        let directory = try await PrivateDirectory()
        let client = DirectoryClient(
            settings: DirectorySettings(
                uris: [directory.uri], baseDN: "dc=corp,dc=example", bindDN: directory.bindDN,
                bindPassword: directory.password, connectTimeout: .seconds(2), operationTimeout: .seconds(2)))
        let lena = try DistinguishedName("uid=lena.wolf,ou=People,dc=corp,dc=example")
        let hannah = try DistinguishedName("CN=Hannah Fischer,CN=Users,DC=ad,DC=example")
        #expect(try await client.accountStatus(of: lena) == .active)
        #expect(try await client.accountStatus(of: hannah) == .active)

        try await directory.modify(
            "dn: \(lena.original)\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
        )
        #expect(
            try await client.accountStatus(of: lena) == .disabled("locked by the password policy since 000001010000Z"))
        try await directory.modify(
            "dn: \(hannah.original)\nchangetype: modify\nadd: userAccountControl\nuserAccountControl: 514\n")
        #expect(try await client.accountStatus(of: hannah) == .disabled("disabled (userAccountControl ACCOUNTDISABLE)"))
        try await directory.modify(
            "dn: \(hannah.original)\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 528\n")
        #expect(try await client.accountStatus(of: hannah) == .disabled("locked out (userAccountControl LOCKOUT)"))
        try await directory.modify(
            "dn: \(hannah.original)\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n")
        #expect(try await client.accountStatus(of: hannah) == .active)

        #expect(
            try await client.accountStatus(of: DistinguishedName("uid=gone,ou=People,dc=corp,dc=example")) == .missing)
        try await directory.stop()
        await #expect(throws: DirectoryError.self) { _ = try await client.accountStatus(of: lena) }
    }
}
