import Crypto
import Foundation
import ORACore
import Testing

@Suite("Offers, signed consent and agent authentication")
struct ConsentReceiptTests {
    // Fixed keys (crypto keys are not Sendable, so they cannot be shared as stored statics).
    static var machineKey: P256.Signing.PrivateKey {
        try! P256.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x11, count: 32))
    }
    static var otherKey: P256.Signing.PrivateKey {
        try! P256.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x22, count: 32))
    }
    static let time = AuditTimestamp(microseconds: 1_795_340_000_123_456)

    static func offer(ticket: String? = "INC0012345", mode: AccessMode = .control) -> Offer {
        Offer(
            session: UUID(uuidString: "11111111-2222-4333-8444-555555555555")!, machine: "ws-0101",
            helper: .init(
                account: "hannah.fischer", dn: "uid=hannah.fischer,ou=People,dc=corp,dc=example",
                displayName: "Hannah \"HF\" Fischer"),
            mode: mode, ticket: ticket, reason: "printer\nqueue", policyVersion: 3,
            policies: ["tier1-view-workstations"], consentTimeoutSeconds: 60, issuedAt: time)
    }

    @Test("an offer's canonical encoding is fixed, sorted, compact JSON, and its hash covers every field")
    func offerEncoding() throws {
        let offer = Self.offer()
        #expect(
            String(decoding: offer.canonicalEncoding, as: UTF8.self)
                == #"{"consent_timeout_seconds":60,"helper":{"account":"hannah.fischer","#
                + #""display_name":"Hannah \"HF\" Fischer","dn":"uid=hannah.fischer,ou=People,dc=corp,dc=example"},"#
                + #""issued_at":"2026-11-22T09:33:20.123456Z","machine":"ws-0101","mode":"control","#
                + #""policies":["tier1-view-workstations"],"policy_version":3,"reason":"printer\nqueue","#
                + #""session":"11111111-2222-4333-8444-555555555555","ticket":"INC0012345"}"#)
        #expect(offer.hash.count == 64)
        var changed: [Offer] = []
        for change in 0..<9 {
            var other = offer
            switch change {
            case 0: other.machine = "ws-0102"
            case 1: other.helper.displayName = "Someone Else"
            case 2: other.mode = .view
            case 3: other.ticket = nil
            case 4: other.reason = "printer queue"
            case 5: other.policies = ["tier2-control"]
            case 6: other.policyVersion = 4
            case 7: other.consentTimeoutSeconds = 61
            default: other.session = UUID()
            }
            changed.append(other)
        }
        #expect(Set(changed.map(\.hash) + [offer.hash]).count == 10)
        let decoded = try JSONDecoder().decode(Offer.self, from: JSONEncoder().encode(offer))
        #expect(decoded == offer)
        #expect(decoded.hash == offer.hash)
    }

    @Test("the helper's title and department are signed with the offer when the directory has them, and shown as text")
    func helperPosition() throws {
        var offer = Self.offer()
        let before = offer.hash
        #expect(offer.helper.positionText == nil)
        offer.helper.title = "Support Engineer\u{1B}[2J"
        offer.helper.department = "IT Service Desk"
        let encoding = String(decoding: offer.canonicalEncoding, as: UTF8.self)
        #expect(
            encoding.hasPrefix(
                #"{"consent_timeout_seconds":60,"helper":{"account":"hannah.fischer","department":"IT Service Desk","#
                    + #""display_name":"Hannah \"HF\" Fischer","dn":"uid=hannah.fischer,ou=People,dc=corp,dc=example","#
                    + #""title":"Support Engineer\u001b[2J"},"issued_at""#), "\(encoding)")
        #expect(offer.hash != before)
        var retitled = offer
        retitled.helper.title = "Administrator"
        #expect(retitled.hash != offer.hash)
        let decoded = try JSONDecoder().decode(Offer.self, from: JSONEncoder().encode(offer))
        #expect(decoded.hash == offer.hash)
        #expect(offer.helper.nameText == #"Hannah "HF" Fischer (hannah.fischer)"#)
        #expect(offer.helper.positionText == #"Position: Support Engineer\u{1b}[2J, IT Service Desk"#)
        offer.helper.title = nil
        #expect(offer.helper.positionText == "Position: IT Service Desk")
    }

    @Test("a receipt signed by the machine verifies, also after a trip through JSON")
    func validReceipt() throws {
        let offer = Self.offer()
        let receipt = try ConsentReceipt(
            answering: .session, request: 0, of: offer, answer: .granted, at: Self.time,
            signingWith: Self.machineKey)
        try receipt.verify(answering: .session, request: 0, of: offer, with: Self.machineKey.publicKey)
        let decoded = try JSONDecoder().decode(ConsentReceipt.self, from: JSONEncoder().encode(receipt))
        try decoded.verify(answering: .session, request: 0, of: offer, with: Self.machineKey.publicKey)
        #expect(receipt.mode == .control)
        #expect(
            String(decoding: receipt.signedMessage, as: UTF8.self)
                == #"{"answer":"granted","machine":"ws-0101","mode":"control","offer_hash":""# + offer.hash
                + #"","purpose":"ora.consent.v1","question":"session","request":0,"#
                + #""session":"11111111-2222-4333-8444-555555555555","time":"2026-11-22T09:33:20.123456Z"}"#)

        let control = try ConsentReceipt(
            answering: .control, request: 2, of: Self.offer(mode: .control), answer: .declined, at: Self.time,
            signingWith: Self.machineKey)
        try control.verify(answering: .control, request: 2, of: offer, with: Self.machineKey.publicKey)
    }

    @Test("a forged, altered or replayed receipt is refused with the reason")
    func forgedReceipts() throws {
        let offer = Self.offer()
        let key = Self.machineKey.publicKey
        func receipt(
            _ question: ConsentReceipt.Question = .session, request: Int = 0, of signed: Offer? = nil,
            key signer: P256.Signing.PrivateKey = Self.machineKey
        ) throws -> ConsentReceipt {
            try ConsentReceipt(
                answering: question, request: request, of: signed ?? offer, answer: .granted, at: Self.time,
                signingWith: signer)
        }
        var flipped = try receipt()
        flipped.answer = .declined
        var edited = try ConsentReceipt(
            answering: .session, request: 0, of: offer, answer: .declined, at: Self.time, signingWith: Self.machineKey)
        edited.answer = .granted  // a server turning a "no" into a "yes"
        var garbage = try receipt()
        garbage.signature = "not base64!"
        var empty = try receipt()
        empty.signature = ""
        var otherSession = offer
        otherSession.session = UUID()
        var otherMachine = offer
        otherMachine.machine = "ws-0999"
        let viewOffer = Self.offer(mode: .view)

        let cases: [(ConsentReceipt, ConsentReceipt.Question, Int, Offer, ConsentReceiptError)] = [
            (flipped, .session, 0, offer, .badSignature),
            (edited, .session, 0, offer, .badSignature),
            (garbage, .session, 0, offer, .badSignature),
            (empty, .session, 0, offer, .badSignature),
            (try receipt(key: Self.otherKey), .session, 0, offer, .badSignature),
            (try receipt(of: otherSession), .session, 0, offer, .wrongSession(otherSession.session)),
            (try receipt(of: otherMachine), .session, 0, offer, .wrongMachine("ws-0999")),
            (try receipt(.session), .control, 1, offer, .wrongQuestion(.session)),
            (try receipt(.control, request: 1), .control, 2, offer, .wrongRequest(expected: 2, received: 1)),
            (try receipt(of: Self.offer(ticket: "INC0099999")), .session, 0, offer, .differentOffer),
            // Signed for a control offer, presented for the view-only one with the same session.
            (try receipt(of: offer), .session, 0, viewOffer, .differentOffer),
        ]
        for (candidate, question, request, expected, error) in cases {
            #expect(throws: error, "\(error.code)") {
                try candidate.verify(answering: question, request: request, of: expected, with: key)
            }
            #expect(!error.description.isEmpty)
        }
    }

    @Test("an agent's answer to a challenge is good for that nonce, machine and server only")
    func agentAuthentication() throws {
        let nonce = AgentAuthentication.makeNonce()
        #expect(Data(base64Encoded: nonce)?.count == 32)
        #expect(nonce != AgentAuthentication.makeNonce())
        let statement = AgentAuthentication(server: "ora.corp.example", machine: "ws-0101", nonce: nonce)
        let signature = try statement.sign(with: Self.machineKey)
        #expect(statement.isValid(signature: signature, for: Self.machineKey.publicKey))
        #expect(!statement.isValid(signature: signature, for: Self.otherKey.publicKey))
        #expect(!statement.isValid(signature: "", for: Self.machineKey.publicKey))
        for other in [
            AgentAuthentication(server: "evil.example", machine: "ws-0101", nonce: nonce),
            AgentAuthentication(server: "ora.corp.example", machine: "ws-0102", nonce: nonce),
            AgentAuthentication(server: "ora.corp.example", machine: "ws-0101", nonce: AgentAuthentication.makeNonce()),
        ] {
            #expect(!other.isValid(signature: signature, for: Self.machineKey.publicKey))
        }
    }

    @Test("device public keys survive their text form; anything else is refused")
    func devicePublicKeys() throws {
        let text = DevicePublicKey.text(Self.machineKey.publicKey)
        #expect(try DevicePublicKey.parse(text).rawRepresentation == Self.machineKey.publicKey.rawRepresentation)
        let curve25519 = Curve25519.Signing.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
        for bad in ["", "not base64", curve25519, Data([0x30, 0x03, 0x01, 0x01, 0x00]).base64EncodedString()] {
            #expect(throws: DevicePublicKeyError()) { try DevicePublicKey.parse(bad) }
        }
    }
}
