import ORADirectory
import Testing

@Suite("What directory settings put at risk")
struct DirectorySettingsTests {
    static func settings(_ uris: [String], tls: DirectoryTLS = DirectoryTLS()) -> DirectorySettings {
        DirectorySettings(uris: uris, baseDN: "dc=corp,dc=example", bindDN: "cn=ora", bindPassword: "x", tls: tls)
    }

    @Test("plain ldap:// without StartTLS is named; ldaps://, StartTLS and a mix with StartTLS are not")
    func plainText() {
        let plain = Self.settings(["ldap://dc1.corp.example", "ldaps://dc2.corp.example", "LDAP://dc3"])
        #expect(
            plain.securityWarnings == [
                "directory connections to ldap://dc1.corp.example, LDAP://dc3 are not encrypted (ldap:// without StartTLS): operators' passwords cross the network in clear text; use ldaps:// or directory.tls.start_tls: true"
            ])
        #expect(Self.settings(["ldaps://dc1.corp.example"]).securityWarnings.isEmpty)
        #expect(Self.settings(["ldap://dc1"], tls: DirectoryTLS(startTLS: true)).securityWarnings.isEmpty)
    }

    @Test("certificate verification switched off is named")
    func noVerification() {
        let warnings = Self.settings(["ldaps://dc1"], tls: DirectoryTLS(verifyCertificates: false)).securityWarnings
        #expect(warnings.count == 1)
        #expect(warnings[0].hasPrefix("directory TLS certificate verification is OFF"))
    }
}
