import Foundation
import ORACore
import Testing

@Suite("Distinguished names (RFC 4514)")
struct DistinguishedNameTests {
    @Test(
        "spellings of one entry are equal",
        arguments: [
            ("CN=Helpdesk,OU=Groups,DC=Corp,DC=Example", "cn=helpdesk,ou=groups,dc=corp,dc=example"),
            ("cn=Helpdesk, ou=Groups, dc=corp, dc=example", "cn=helpdesk,ou=groups,dc=corp,dc=example"),
            ("cn = Helpdesk  Tier 1 ,ou=Groups", "cn=helpdesk tier 1,ou=groups"),
            ("cn=M\\C3\\BCller\\2C Klaus,ou=People", "cn=Müller\\, Klaus,ou=People"),
            ("CN=\"Müller, Klaus\",OU=People", "cn=müller\\, klaus,ou=people"),
            ("2.5.4.3=Helpdesk,0.9.2342.19200300.100.1.25=corp", "cn=helpdesk,dc=corp"),
            ("uid=a+cn=B,dc=x", "CN=b+UID=A,DC=x"),
            ("cn=a;dc=x", "cn=a,dc=x"),
            ("OID.2.5.4.3=Helpdesk,oid.2.5.4.11=Groups", "cn=helpdesk,ou=groups"),
        ]
    )
    func equal(first: String, second: String) throws {
        #expect(try DistinguishedName(first) == DistinguishedName(second))
        #expect(try DistinguishedName(first).hashValue == DistinguishedName(second).hashValue)
    }

    @Test(
        "different entries are different",
        arguments: [
            ("cn=Helpdesk,ou=Groups,dc=corp", "cn=Helpdesk Tier 1,ou=Groups,dc=corp"),
            ("cn=a\\,b,dc=x", "cn=a,cn=b,dc=x"),
            ("cn=a,dc=x", "cn=a,dc=y"),
            ("cn=a+uid=b,dc=x", "cn=a,uid=b,dc=x"),
            ("cn=#0a0b,dc=x", "cn=#ab,dc=x"),
        ]
    )
    func different(first: String, second: String) throws {
        #expect(try DistinguishedName(first) != DistinguishedName(second))
    }

    @Test("the normalised form escapes what needs escaping")
    func normalizedForm() throws {
        let dn = try DistinguishedName("CN=Müller\\, Klaus,OU=People,DC=Corp")
        #expect(dn.normalized == "cn=müller\\, klaus,ou=people,dc=corp")
        #expect(dn.rdns.first?.first?.value == "Müller, Klaus")
        #expect(dn.description == "CN=Müller\\, Klaus,OU=People,DC=Corp")
    }

    @Test("parents, ancestors and subtree membership")
    func hierarchy() throws {
        let machine = try DistinguishedName("cn=KIOSK-LOBBY1,ou=Kiosks,ou=Computers,dc=corp,dc=example")
        #expect(machine.parent == (try DistinguishedName("ou=kiosks,ou=computers,dc=corp,dc=example")))
        #expect(
            machine.ancestors.map(\.normalized) == [
                "ou=kiosks,ou=computers,dc=corp,dc=example", "ou=computers,dc=corp,dc=example", "dc=corp,dc=example",
                "dc=example",
            ])
        #expect(machine.isWithin(try DistinguishedName("OU=Computers,DC=Corp,DC=Example")))
        #expect(machine.isWithin(machine))
        #expect(machine.ancestors.map(\.isDomainComponent) == [false, false, true, true])
        #expect(try DistinguishedName("DC=corp").isDomainComponent)
        #expect(!(try DistinguishedName("dc=a+cn=b,dc=corp")).isDomainComponent)
        #expect(!machine.isWithin(try DistinguishedName("ou=Servers,ou=Computers,dc=corp,dc=example")))
        // A suffix of the text that is not a whole RDN is not an ancestor.
        #expect(
            !(try DistinguishedName("cn=x,ou=BigKiosks,dc=corp")).isWithin(try DistinguishedName("ou=Kiosks,dc=corp")))
        // Nor is a value that merely contains an escaped comma.
        #expect(
            !(try DistinguishedName(#"cn=evil\,ou=Kiosks,dc=corp"#)).isWithin(
                try DistinguishedName("ou=Kiosks,dc=corp")))
    }

    @Test(
        "values are escaped for DNs",
        arguments: [
            ("Müller, Klaus", "Müller\\, Klaus"),
            ("a+b=c", "a\\+b\\=c"),
            ("#hash", "\\#hash"),
            (" padded ", "\\ padded\\ "),
            ("back\\slash", "back\\\\slash"),
            ("quote\"<>;", "quote\\\"\\<\\>\\;"),
            ("nul\u{0}", "nul\\00"),
            ("plain", "plain"),
        ]
    )
    func escaping(value: String, escaped: String) throws {
        #expect(DistinguishedName.escape(value) == escaped)
        // What is escaped parses back to the same value.
        let dn = try DistinguishedName("cn=\(escaped),dc=x")
        #expect(dn.rdns.first?.first?.value == value)
    }

    @Test(
        "malformed names are rejected with a reason",
        arguments: [
            "cn", "=value", "cn=a,", "cn=a\\", "cn=a\\zz", "cn=a\"b", "c n=x", "cn=\"open", "cn=<x>",
            // Attribute types (RFC 4514 §3): a name starting with a letter, or a dotted number, after at most one OID.
            "oid.=x", "OID.oid.2.5.4.3=x", "oid.cn=x", "1cn=x", "-cn=x", "5=x", "2.5..4.3=x", "2.05.4.3=x",
            "2.5.4.3.=x",
        ]
    )
    func malformed(text: String) {
        #expect(throws: DistinguishedNameError.self) { try DistinguishedName(text) }
    }

    @Test("an attribute type that is neither a name nor a dotted number is named in the error")
    func badAttributeType() {
        #expect {
            try DistinguishedName("oid.=x,dc=corp")
        } throws: { error in
            (error as? DistinguishedNameError)?.reason
                == "\"oid.\" is not an attribute type (a name such as cn, or a dotted number such as 2.5.4.3)"
        }
    }

    @Test("a DN of 64 RDNs is read; one of 65 is refused, saying why")
    func depth() throws {
        let deepest = (1...64).map { "ou=level\($0)" }.joined(separator: ",")
        #expect(try DistinguishedName(deepest).ancestors.count == 63)
        #expect {
            try DistinguishedName("cn=one more," + deepest)
        } throws: { error in
            (error as? DistinguishedNameError)?.reason == "more than 64 RDNs"
        }
        // Multi-valued RDNs count once.
        #expect(
            try DistinguishedName("cn=a+uid=b," + deepest.split(separator: ",").dropFirst().joined(separator: ","))
                .rdns.count == 64)
    }

    @Test("the empty DN is the root")
    func empty() throws {
        let root = try DistinguishedName("")
        #expect(root.rdns.isEmpty)
        #expect(try DistinguishedName("cn=a,dc=x").isWithin(root))
    }

    @Test("a computer's organisational units, however the ou type is spelt")
    func organizationalUnits() throws {
        let computer = Computer(
            name: "PC-1", dn: try DistinguishedName("cn=PC-1,2.5.4.11=Kiosks,OU=Computers,cn=Site,dc=corp"), groups: [])
        #expect(
            computer.organizationalUnits == [
                try DistinguishedName("ou=Kiosks,ou=Computers,cn=Site,dc=corp"),
                try DistinguishedName("ou=Computers,cn=Site,dc=corp"),
            ])
    }

    @Test("a DN travels as its text as given, and text that is not a DN is refused when read back, not dropped")
    func codable() throws {
        let groups = [
            try DistinguishedName("CN=Helpdesk Tier 2,OU=Groups,DC=corp,DC=example"),
            try DistinguishedName("cn=Kiosk\\2C Lobby,ou=Groups,dc=corp,dc=example"),
        ]
        let encoded = try JSONEncoder().encode(groups)
        #expect(
            String(decoding: encoded, as: UTF8.self)
                == #"["CN=Helpdesk Tier 2,OU=Groups,DC=corp,DC=example","cn=Kiosk\\2C Lobby,ou=Groups,dc=corp,dc=example"]"#
        )
        let decoded = try JSONDecoder().decode([DistinguishedName].self, from: encoded)
        #expect(decoded == groups)
        #expect(decoded.map(\.original) == groups.map(\.original))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([DistinguishedName].self, from: Data(#"["cn=ok,dc=x","not a dn"]"#.utf8))
        }
    }
}

@Suite("Names probably meant")
struct NameSimilarityTests {
    @Test("a typo finds the name meant; case, spaces and punctuation do not count; strangers are not suggested")
    func nearest() throws {
        let groups = ["Helpdesk Tier 1", "Helpdesk Tier 2", "Helpdesk", "Security", "RA Admins"]
        #expect(NameSimilarity.nearest(to: "Helpdesk Tier2", in: groups) == ["Helpdesk Tier 2"])
        #expect(NameSimilarity.nearest(to: "helpdesk-tier-1", in: groups) == ["Helpdesk Tier 1"])
        #expect(NameSimilarity.nearest(to: "Helpdesk Tier 3", in: groups) == ["Helpdesk Tier 1", "Helpdesk Tier 2"])
        #expect(NameSimilarity.nearest(to: "Secrity", in: groups) == ["Security"])
        #expect(NameSimilarity.nearest(to: "Finance", in: groups).isEmpty)
        #expect(NameSimilarity.distance("Workstation", "Workstations") == 1)
        #expect(NameSimilarity.distance("", "abc") == 3)
    }

    @Test("replacing an ancestor keeps the levels below it")
    func replacing() throws {
        let dn = try DistinguishedName("cn=Helpdesk Tier 2,ou=Group,dc=corp,dc=example")
        let replaced = dn.replacing(
            try DistinguishedName("ou=Group,dc=corp,dc=example"),
            with: try DistinguishedName("ou=Groups,dc=corp,dc=example"))
        #expect(replaced == (try DistinguishedName("cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example")))
        #expect(replaced.description == "cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example")
    }
}
