import Crypto
import Foundation
import ORACore
import Testing

@Suite("Audit events: canonical encoding, hash chain, verification")
struct AuditChainTests {
    static let time = AuditTimestamp(microseconds: 1_795_340_000_123_456)

    static func event(_ number: Int, machine: String? = "WS-0101") -> AuditEvent {
        AuditEvent(
            .offerRequested, id: UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", number))!,
            time: AuditTimestamp(microseconds: time.microseconds + Int64(number)),
            actor: .operator(dn: "uid=hannah.fischer,ou=People,dc=corp,dc=example", account: "hannah.fischer"),
            machine: machine, session: UUID(uuidString: "11111111-2222-4333-8444-555555555555"), source: "192.0.2.7",
            policy: .init(version: 3, names: ["tier1-view-workstations"]), outcome: .success,
            details: ["mode": "view", "ticket": "INC0012345", "attempt": .integer(Int64(number))])
    }

    @Test("the canonical encoding is fixed, sorted, compact JSON with every field present")
    func canonicalEncoding() {
        let text = String(decoding: AuditCanonicalEncoding.encode(Self.event(1), sequence: 7), as: UTF8.self)
        #expect(
            text
                == #"{"actor":{"id":"uid=hannah.fischer,ou=People,dc=corp,dc=example","kind":"operator","name":"hannah.fischer"},"#
                + #""code":"ORA2001","details":{"attempt":1,"mode":"view","ticket":"INC0012345"},"event":"offer.requested","#
                + #""id":"00000000-0000-4000-8000-000000000001","machine":"WS-0101","outcome":"success","#
                + #""policy":{"names":["tier1-view-workstations"],"version":3},"sequence":7,"#
                + #""session":"11111111-2222-4333-8444-555555555555","source":"192.0.2.7","#
                + #""time":"2026-11-22T09:33:20.123457Z"}"#)
        let empty = AuditEvent(
            .auditCheckpoint, id: UUID(uuidString: "00000000-0000-4000-8000-000000000000")!,
            time: AuditTimestamp(microseconds: 0), actor: .system("host:1"), outcome: .success)
        #expect(
            String(decoding: AuditCanonicalEncoding.encode(empty, sequence: 1), as: UTF8.self)
                == #"{"actor":{"id":"host:1","kind":"system","name":null},"code":"ORA5001","details":{},"#
                + #""event":"audit.checkpoint","id":"00000000-0000-4000-8000-000000000000","machine":null,"#
                + #""outcome":"success","policy":null,"sequence":1,"session":null,"source":null,"#
                + #""time":"1970-01-01T00:00:00.000000Z"}"#)
    }

    @Test(
        "hostile text is escaped exactly as JSON requires and nothing else",
        arguments: [
            ("a\"b", #""a\"b""#), ("back\\slash", #""back\\slash""#), ("line\r\nforged", #""line\r\nforged""#),
            ("\u{1b}[31mred", #""\u001b[31mred""#), ("tab\there", #""tab\there""#), ("é ü 日本", "\"é ü 日本\""),
            ("\u{7f}\u{2028}", "\"\u{7f}\u{2028}\""), ("nul\u{0}", "\"nul\u{FFFD}\""),
        ])
    func escaping(input: String, expected: String) {
        let event = AuditEvent(
            .operatorLoginFailed, id: UUID(), time: Self.time,
            actor: AuditActor(kind: .operator, id: input, name: input),
            outcome: .failure)
        let text = String(decoding: AuditCanonicalEncoding.encode(event, sequence: 1), as: UTF8.self)
        #expect(text.contains(#"{"actor":{"id":"# + expected + #","kind":"operator","name":"# + expected + "}"))
    }

    @Test("times are RFC 3339 UTC with six fractional digits, before and after 1970")
    func timestamps() {
        #expect(AuditTimestamp(microseconds: 0).description == "1970-01-01T00:00:00.000000Z")
        #expect(AuditTimestamp(microseconds: -1).description == "1969-12-31T23:59:59.999999Z")
        #expect(AuditTimestamp(microseconds: 951_782_400_000_000).description == "2000-02-29T00:00:00.000000Z")
        #expect(AuditTimestamp(microseconds: 4_102_444_799_999_999).description == "2099-12-31T23:59:59.999999Z")
        let date = Date(timeIntervalSince1970: 1_795_340_000.5)
        #expect(AuditTimestamp(date).microseconds == 1_795_340_000_500_000)
    }

    @Test("each hash covers the previous hash and the event; the first follows 32 zero bytes")
    func chaining() {
        var head = AuditChainHead.empty
        let chained = head.append([Self.event(1), Self.event(2), Self.event(3)])
        #expect(chained.map(\.sequence) == [1, 2, 3])
        #expect(chained[0].previousHash == [UInt8](repeating: 0, count: 32))
        #expect(chained[1].previousHash == chained[0].hash)
        #expect(head == AuditChainHead(sequence: 3, hash: chained[2].hash))
        var hasher = SHA256()
        hasher.update(data: chained[0].hash)
        hasher.update(data: AuditCanonicalEncoding.encode(Self.event(2), sequence: 2))
        #expect(Array(hasher.finalize()) == chained[1].hash)
    }

    @Test("a link from the encoding done ahead is the link of the whole encoding, at any sequence")
    func preparedLink() {
        let event = Self.event(4)
        let prepared = PreparedAuditEvent(event)
        let previous = (0..<32).map { UInt8($0 * 7 % 256) }
        for sequence: Int64 in [1, 9, 10, 99, 100, 1_234_567_890_123, .max, 0, -1, .min] {
            let link = previous.withUnsafeBytes { Array(prepared.link(sequence: sequence, after: $0)) }
            #expect(link == AuditChainHead.link(event, sequence: sequence, after: previous), "sequence \(sequence)")
        }
    }

    static func chain(_ count: Int) -> [ChainedAuditEvent] {
        var head = AuditChainHead.empty
        return head.append((1...count).map { event($0) })
    }

    static func verify(_ events: [ChainedAuditEvent], anchor: AuditChainHead? = .empty) -> AuditChainVerifier {
        var verifier = AuditChainVerifier(anchor: anchor)
        for event in events where verifier.check(event) {}
        return verifier
    }

    @Test("an intact chain verifies")
    func intact() {
        let verifier = Self.verify(Self.chain(20))
        #expect(verifier.problem == nil)
        #expect(verifier.verified == 20)
    }

    @Test("an edited field is found at that event")
    func edited() {
        var events = Self.chain(10)
        events[4].event.machine = "SRV-DB01"
        let verifier = Self.verify(events)
        #expect(verifier.problem?.kind == .hashMismatch)
        #expect(verifier.problem?.sequence == 5)
        #expect(verifier.problem?.eventID == events[4].event.id)
        #expect(verifier.verified == 4)
    }

    @Test("a removed event is found where it is missing")
    func removed() {
        var events = Self.chain(10)
        events.remove(at: 6)
        let verifier = Self.verify(events)
        #expect(verifier.problem?.kind == .missingEvents)
        #expect(verifier.problem?.sequence == 7)
    }

    @Test("two events swapped, with or without their sequence numbers, are found at the first")
    func reordered() {
        var events = Self.chain(10)
        events.swapAt(3, 4)
        #expect(Self.verify(events).problem?.sequence == 4)
        var renumbered = Self.chain(10)
        renumbered.swapAt(3, 4)
        renumbered[3].sequence = 4
        renumbered[4].sequence = 5
        let verifier = Self.verify(renumbered)
        #expect(verifier.problem?.sequence == 4)
        #expect(verifier.problem?.kind == .brokenLink)
    }

    @Test("a rewritten chain (every hash recomputed from an edit on) fails at the anchor")
    func rewritten() {
        let original = Self.chain(5)
        var head = AuditChainHead(sequence: 2, hash: [UInt8](repeating: 7, count: 32))
        let forged = head.append([Self.event(3, machine: "OTHER"), Self.event(4), Self.event(5)])
        let verifier = Self.verify(Array(original.prefix(2)) + forged)
        #expect(verifier.problem?.kind == .brokenLink)
        #expect(verifier.problem?.sequence == 3)
    }

    @Test("the first event must follow the genesis hash")
    func genesis() {
        var head = AuditChainHead(sequence: 0, hash: [UInt8](repeating: 1, count: 32))
        let events = head.append([Self.event(1)])
        #expect(Self.verify(events).problem?.kind == .brokenLink)
        #expect(Self.verify(events, anchor: nil).problem == nil)
    }

    @Test("a checkpoint's signature verifies with its key and fails when anything changes")
    func checkpoints() throws {
        let key = Curve25519.Signing.PrivateKey()
        let head = AuditChainHead(sequence: 42, hash: Self.chain(1)[0].hash)
        let checkpoint = try AuditCheckpoint(signing: head, at: Self.time, with: key)
        #expect(checkpoint.hasValidSignature)
        #expect(
            String(decoding: checkpoint.signedMessage, as: UTF8.self)
                == #"{"hash":"\#(Hex.encode(head.hash))","sequence":42,"time":"2026-11-22T09:33:20.123456Z"}"#)
        var moved = checkpoint
        moved.sequence = 41
        #expect(!moved.hasValidSignature)
        var otherKey = checkpoint
        otherKey.publicKey = Curve25519.Signing.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
        #expect(!otherKey.hasValidSignature)
    }

    @Test("signing keys are read from openssl's PEM and bad files are named")
    func signingKeys() throws {
        let key = Curve25519.Signing.PrivateKey()
        let der =
            Data([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])
            + key.rawRepresentation
        let pem = "-----BEGIN PRIVATE KEY-----\n\(der.base64EncodedString())\n-----END PRIVATE KEY-----\n"
        #expect(try AuditSigningKey.privateKey(pem: pem).publicKey.rawRepresentation == key.publicKey.rawRepresentation)
        #expect(AuditSigningKey.publicKeyPEM(key.publicKey).hasPrefix("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"))
        #expect(throws: AuditSigningKey.FormatError.self) { try AuditSigningKey.privateKey(pem: "nothing here") }
        let rsaLike = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8=\n-----END PRIVATE KEY-----"
        do {
            _ = try AuditSigningKey.privateKey(pem: rsaLike)
            Issue.record("an RSA key was accepted")
        } catch {
            #expect(error.description.contains("not an Ed25519 private key"))
        }
    }

    @Test("recorded answers must be signed by the machine's enrolled key and say what the event says")
    func consentReceipts() throws {
        let key = ConsentReceiptTests.machineKey
        let other = ConsentReceiptTests.otherKey
        let offer = ConsentReceiptTests.offer()
        func receipt(_ answer: ConsentAnswer, by signer: P256.Signing.PrivateKey) throws -> ConsentReceipt {
            try ConsentReceipt(
                answering: .session, request: 0, of: offer, answer: answer, at: Self.time, signingWith: signer)
        }
        func answer(
            _ type: AuditEventType, _ receipt: ConsentReceipt, recordedKey: P256.Signing.PrivateKey
        )
            -> AuditEvent
        {
            AuditEvent(
                type, time: AuditTimestamp(Date()), actor: .machine("ws-0101"), machine: "ws-0101",
                session: offer.session, outcome: .success,
                details: [
                    "receipt": receipt.auditValue,
                    "public_key": .string(DevicePublicKey.text(recordedKey.publicKey)),
                ])
        }
        let enrolled = AuditEvent(
            .agentEnrolled, time: AuditTimestamp(Date()), actor: .machine("ws-0101"), machine: "ws-0101",
            outcome: .success,
            details: ["public_key": .string(DevicePublicKey.text(key.publicKey))])
        func problem(_ events: [AuditEvent]) -> AuditChainProblem? {
            var head = AuditChainHead.empty
            var verifier = AuditChainVerifier(anchor: .empty)
            for event in head.append(events) { verifier.check(event) }
            return verifier.problem
        }

        let yes = try receipt(.granted, by: key)
        let no = try receipt(.declined, by: key)
        #expect(problem([enrolled, answer(.consentGranted, yes, recordedKey: key)]) == nil)
        #expect(problem([enrolled, answer(.consentDeclined, no, recordedKey: key)]) == nil)
        #expect(ConsentReceipt(auditValue: yes.auditValue) == yes)

        var altered = no
        altered.answer = .granted
        let cases: [(AuditEvent, String)] = [
            (
                answer(.consentGranted, no, recordedKey: key),
                "the event says consent.granted, but the signed answer is declined"
            ),
            (
                answer(.sessionStarted, no, recordedKey: key),
                "the event says session.started, but the signed answer is declined"
            ),
            (answer(.consentGranted, altered, recordedKey: key), "not signed by the key recorded with it"),
            (
                answer(.consentGranted, try receipt(.granted, by: other), recordedKey: key),
                "not signed by the key recorded with it"
            ),
            (
                answer(.consentGranted, try receipt(.granted, by: other), recordedKey: other),
                "not ws-0101's enrolled device key"
            ),
            (
                AuditEvent(
                    .consentGranted, time: AuditTimestamp(Date()), actor: .machine("ws-0101"), machine: "ws-0101",
                    session: offer.session,
                    outcome: .success, details: ["receipt": "forged", "public_key": "x"]),
                "cannot be read as a signed receipt"
            ),
        ]
        for (event, detail) in cases {
            let found = try #require(problem([enrolled, Self.event(1), event]))
            #expect(found.kind == .consentSignature)
            #expect(found.sequence == 3)
            #expect(found.detail.contains(detail), "\(found.detail)")
        }
    }

    @Test("every event type has a unique name and code")
    func registry() {
        let types = AuditEventType.allCases
        #expect(Set(types.map(\.code)).count == types.count)
        #expect(types.allSatisfy { $0.name.split(separator: ".").count == 2 && $0.code.hasPrefix("ORA") })
        #expect(AuditEventType(code: "ORA2001") == .offerRequested)
        #expect(AuditEventType(code: "ORA9999") == nil)
    }
}
