import Foundation
import ORACore
import Testing

@Suite("What an enrollment token may enroll")
struct EnrollmentBindingTests {
    static let ws0101 = Computer(
        name: "WS-0101", dn: try! DistinguishedName("cn=WS-0101,ou=Workstations,ou=Computers,dc=corp,dc=example"),
        groups: [try! DistinguishedName("cn=Finance Workstations,ou=Computer Groups,ou=Groups,dc=corp,dc=example")])

    @Test(
        "each binding admits what it names and nothing else",
        arguments: [
            ("machine", "ws-0101", true),
            ("machine", "WS-0101", true),
            ("machine", "ws-0102", false),
            ("machine", "ws-010", false),
            ("ou", "ou=Workstations,ou=Computers,dc=corp,dc=example", true),
            ("ou", "OU=workstations, OU=Computers, DC=corp, DC=example", true),
            ("ou", "ou=Computers,dc=corp,dc=example", true),
            ("ou", "ou=Laptops,ou=Computers,dc=corp,dc=example", false),
            ("ou", "cn=WS-0101,ou=Workstations,ou=Computers,dc=corp,dc=example", false),
            ("ou", "ou=Workstations\\,ou=Computers,dc=corp,dc=example", false),
            ("group", "cn=Finance Workstations,ou=Computer Groups,ou=Groups,dc=corp,dc=example", true),
            ("group", "cn=Lobby Kiosks,ou=Computer Groups,ou=Groups,dc=corp,dc=example", false),
        ])
    func admits(kind: String, value: String, admitted: Bool) throws {
        let binding = try EnrollmentBinding(kind: kind, value: value)
        #expect(binding.admits(Self.ws0101) == admitted)
        #expect(binding.kind == kind)
    }

    @Test("a machine binding rules out another name before the directory is asked; the others cannot")
    func mayName() throws {
        #expect(try EnrollmentBinding(kind: "machine", value: "WS-0101").mayName("ws-0101"))
        #expect(!(try EnrollmentBinding(kind: "machine", value: "WS-0101").mayName("ws-0102")))
        #expect(try EnrollmentBinding(kind: "ou", value: "dc=corp,dc=example").mayName("anything"))
    }

    @Test(
        "a binding that cannot be used says what is wrong",
        arguments: [
            ("computer", "ws-0101", "a token is bound to a 'machine', an 'ou' or a 'group', not 'computer'"),
            ("machine", "", "'machine' must be a machine name of 1 to 200 characters"),
            ("machine", "ws 0101", "without spaces or control characters"),
            ("machine", "ws-0101\r\n", "without spaces or control characters"),
            ("ou", "Workstations", "'ou' must be a DN: not a valid DN"),
            ("group", "=x", "'group' must be a DN"),
            ("ou", "", "'ou' must be a DN"),
        ])
    func refused(kind: String, value: String, message: String) {
        #expect {
            try EnrollmentBinding(kind: kind, value: value)
        } throws: { error in
            (error as? EnrollmentBindingError)?.description.contains(message) == true
        }
    }

    @Test("a device key's fingerprint is the SHA-256 of its DER, as OpenSSH writes it")
    func fingerprint() {
        // The DER bytes "abc": SHA-256 ba7816bf…, whose base64 is ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=.
        #expect(DevicePublicKey.fingerprint("YWJj") == "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0")
        #expect(DevicePublicKey.fingerprint("not base64!") == nil)
    }
}
