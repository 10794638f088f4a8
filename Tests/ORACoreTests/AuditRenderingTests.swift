import Foundation
import ORACore
import Testing

@Suite("Audit events rendered for people, spreadsheets and SIEMs")
struct AuditRenderingTests {
    static func chained(machine: String, account: String = "hannah.fischer") -> ChainedAuditEvent {
        var head = AuditChainHead.empty
        return head.append([
            AuditEvent(
                .offerDenied, id: UUID(uuidString: "00000000-0000-4000-8000-000000000001")!,
                time: AuditTimestamp(microseconds: 1_795_340_000_000_000),
                actor: .operator(dn: "uid=\(account),ou=People,dc=corp,dc=example", account: account), machine: machine,
                source: "192.0.2.7", policy: .init(version: 3, names: ["never-servers", "a]b"]), outcome: .denied,
                details: ["reason": .string(machine)])
        ])[0]
    }

    @Test(
        "terminal text escapes line breaks, escapes and backslashes",
        arguments: [
            ("plain", "plain"), ("two\nlines", "two\\nlines"), ("cr\rlf", "cr\\rlf"), ("\u{1b}[2J", "\\u{1b}[2J"),
            ("back\\n", "back\\\\n"), ("\u{85}\u{2028}", "\\u{85}\\u{2028}"),
            ("\u{202E}gnp.exe", "\\u{202e}gnp.exe"), ("a\u{200B}b\u{2066}c\u{FEFF}", "a\\u{200b}b\\u{2066}c\\u{feff}"),
            // What a NUL is stored as is seen, not passed over.
            ("nul\u{FFFD}", "nul\\u{fffd}"),
        ])
    func terminal(input: String, expected: String) {
        #expect(AuditText.escaped(input) == expected)
    }

    @Test("details as JSON are escaped once: JSON's own escapes stay, what JSON leaves raw is escaped, it stays JSON")
    func detailsJSON() throws {
        let details: [String: String] = [
            "reason": "say \"hi\"\nback\\slash\u{1b}[2J", "name": "\u{202E}gnp.exe\u{85}\u{2028}\u{7f}nul\u{FFFD}",
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = String(decoding: try encoder.encode(details), as: UTF8.self)
        let shown = AuditText.escapedJSON(json)
        #expect(
            shown
                == #"{"name":"\u202egnp.exe\u0085\u2028\u007fnul\ufffd","reason":"say \"hi\"\nback\\slash\u001b[2J"}"#)
        // Nothing is left to forge a line or drive a terminal, and a program reads back exactly what was recorded.
        #expect(!shown.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) })
        #expect(try JSONDecoder().decode([String: String].self, from: Data(shown.utf8)) == details)
    }

    @Test("CSV quotes what needs quoting and defuses spreadsheet formulas")
    func csv() {
        let line = AuditExport.csvLine(Self.chained(machine: "=HYPERLINK(\"http://x\",\"y\"),\nnext"))
        #expect(line.hasSuffix("\r\n"))
        #expect(line.contains(#""'=HYPERLINK(""http://x"",""y""),"#))
        #expect(line.hasPrefix("1,2026-11-22T09:33:20.000000Z,offer.denied,ORA2002,denied,operator,"))
        #expect(line.contains(",3,never-servers;a]b,"))
        for dangerous in ["+1", "-1", "@SUM(A1)", "\tx"] {
            #expect(AuditExport.csvLine(Self.chained(machine: dangerous)).contains(",'\(dangerous)"))
        }
    }

    @Test("the JSON export is the canonical document plus the two hashes, and round-trips through the decoder")
    func json() throws {
        let chained = Self.chained(machine: "WS-0101")
        let line = AuditExport.json(chained)
        let document = try JSONDecoder().decode(AuditEventDocument.self, from: Data(line))
        #expect(document.sequence == 1)
        #expect(document.machine == "WS-0101")
        #expect(document.hash == Hex.encode(chained.hash))
        #expect(document.previousHash == String(repeating: "0", count: 64))
        #expect(document.policy?.names == ["never-servers", "a]b"])
        #expect(document.details == ["reason": "WS-0101"])
        let canonical = AuditCanonicalEncoding.encode(chained.event, sequence: 1)
        #expect(Array(line.prefix(canonical.count - 1)) == Array(canonical.dropLast()))
    }

    @Test("syslog carries every field as escaped structured data and no outside text in the message")
    func syslog() {
        let message = AuditSyslog.message(
            Self.chained(machine: "WS\"]\n<13>1 forged"), hostname: "ora one.example", facility: 13)
        #expect(message.hasPrefix("<108>1 2026-11-22T09:33:20.000000Z oraone.example ora - ORA2002 [ora@32473 "))
        #expect(message.contains(#" machine="WS\"\]\u{a}<13>1 forged""#))
        #expect(message.contains(#" policy="never-servers" policy="a\]b""#))
        #expect(message.contains(#" policy_version="3""#))
        #expect(message.contains(#" actor_name="hannah.fischer""#))
        #expect(message.hasSuffix("] offer.denied denied"))
        #expect(!message.contains("\n"))
        let frame = AuditSyslog.frame(message)
        #expect(String(decoding: frame, as: UTF8.self) == "\(message.utf8.count) \(message)")
    }
}

@Suite("Audit events kept as JSON")
struct AuditEventCodingTests {
    @Test("an event decodes to an equal one, every kind of value included")
    func roundTrip() throws {
        let event = AuditEvent(
            .sessionEnded, time: AuditTimestamp(Date()),
            actor: .operator(dn: "uid=lena.wolf,dc=example", account: "lena.wolf"),
            machine: "ws-0101", session: UUID(), source: "192.0.2.1",
            policy: .init(version: 7, names: ["tier2-control"]), outcome: .success,
            details: [
                "reason": "helper_ended", "zero": 0, "one": 1, "big": .integer(Int64.max), "yes": true, "no": false,
                "nothing": nil, "list": [1, "two", [true]], "object": ["inner": "\u{202E}text\n"],
            ])
        let decoded = try JSONDecoder().decode(AuditEvent.self, from: try JSONEncoder().encode(event))
        #expect(decoded == event)
        let machineless = AuditEvent(
            .operatorLoginFailed, time: AuditTimestamp(Date()), actor: .system("x"), outcome: .failure)
        #expect(try JSONDecoder().decode(AuditEvent.self, from: try JSONEncoder().encode(machineless)) == machineless)
    }
}
