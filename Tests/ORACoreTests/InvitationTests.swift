import Crypto
import Foundation
import ORACore
import Testing

@Suite("Invitations: the signed file, the password proof and the machine's decision")
struct InvitationTests {
    static var machineKey: P256.Signing.PrivateKey {
        try! P256.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x11, count: 32))
    }
    static var otherKey: P256.Signing.PrivateKey {
        try! P256.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x22, count: 32))
    }
    static let created = Date(timeIntervalSince1970: 1_796_563_800)
    /// Cheap parameters for tests that derive many keys; real invitations use `Parameters.fresh()`.
    static let parameters = InvitationPassword.Parameters(
        kdf: "scrypt", salt: Data(repeating: 7, count: 16).base64EncodedString(), n: 1 << 14, r: 8, p: 1)

    static func invitation(password: InvitationPassword.Parameters? = parameters) -> Invitation {
        Invitation(
            id: UUID(uuidString: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")!, server: "https://ora.corp.example",
            machine: "ws-0101", askedBy: .init(account: "jonas.meyer", displayName: "Jonas \"JM\" Meyer"),
            message: "Outlook keeps asking\nfor my password", channel: .file, createdAt: created,
            expiresAt: created + 3600, password: password, machineKey: machineKey.publicKey)
    }

    @Test("the file is signed by the machine, reads back as it was, and says what it is")
    func fileRoundTrip() throws {
        let signed = try SignedInvitation(Self.invitation(), signingWith: Self.machineKey)
        let content = signed.fileContent
        let text = String(decoding: content, as: UTF8.self)
        #expect(text.contains(#""format" : "ora-invitation/1""#))
        #expect(text.contains(#""expires_at" : "2026-12-06T14:30:00Z""#), "\(text)")
        let read = try SignedInvitation(fileContent: content)
        #expect(read == signed)
        #expect(read.invitation.expiry == Self.created + 3600)
        #expect(!read.invitation.hasExpired(at: Self.created + 3599))
        #expect(read.invitation.hasExpired(at: Self.created + 3600))
        // No secret in the file: of the password, only how to derive its key.
        let object = try #require(try JSONSerialization.jsonObject(with: content) as? [String: Any])
        let fields = try #require(object["invitation"] as? [String: Any])
        #expect(Set((fields["password"] as? [String: Any] ?? [:]).keys) == ["kdf", "salt", "n", "r", "p"])
        #expect(
            String(decoding: read.invitation.signedMessage, as: UTF8.self).hasPrefix(
                #"{"asked_by":{"account":"jonas.meyer","display_name":"Jonas \"JM\" Meyer"},"channel":"file","#))
    }

    @Test("changing any byte of the file makes it unreadable or not genuine, never another valid invitation")
    func anyByteAltered() throws {
        let content = try SignedInvitation(Self.invitation(), signingWith: Self.machineKey).fileContent
        var outcomes: [String: Int] = [:]
        for index in content.indices {
            var altered = content
            altered[index] ^= 0x01
            do {
                let read = try SignedInvitation(fileContent: altered)
                // Only a change JSON does not see (white space between tokens) may read back, and then unchanged.
                #expect(read == (try SignedInvitation(fileContent: content)), "byte \(index) changed the invitation")
                outcomes["same", default: 0] += 1
            } catch {
                outcomes[error.code, default: 0] += 1
            }
        }
        #expect(outcomes["not_genuine", default: 0] > content.count / 3, "\(outcomes)")
        #expect(outcomes["unreadable_invitation", default: 0] > 0, "\(outcomes)")
    }

    @Test("a forgery is told apart: signed by another key, or naming a key that did not sign it")
    func forgeries() throws {
        var invitation = Self.invitation()
        // Signed by another key while naming the machine's: not genuine.
        let forged = try SignedInvitation(invitation, signingWith: Self.otherKey)
        #expect(throws: InvitationError.notGenuine) { try SignedInvitation(fileContent: forged.fileContent) }
        // Naming and signed by another key: genuine by itself — only the server can say it is not the enrolled key.
        invitation.machineKey = DevicePublicKey.text(Self.otherKey.publicKey)
        let selfSigned = try SignedInvitation(invitation, signingWith: Self.otherKey)
        let read = try SignedInvitation(fileContent: selfSigned.fileContent)
        #expect(try read.machineKey().rawRepresentation != Self.machineKey.publicKey.rawRepresentation)
        // Not JSON, another format, too large.
        #expect(throws: InvitationError.self) { try SignedInvitation(fileContent: Data("hello".utf8)) }
        let otherFormat = String(decoding: forged.fileContent, as: UTF8.self)
            .replacingOccurrences(of: "ora-invitation/1", with: "ora-invitation/2")
        #expect(throws: InvitationError.self) { try SignedInvitation(fileContent: Data(otherFormat.utf8)) }
        #expect(throws: InvitationError.self) {
            try SignedInvitation(fileContent: Data(repeating: 0x20, count: SignedInvitation.largestFile + 1))
        }
    }

    @Test("the password proof: right password, right challenge, sealed to the machine; anything else fails")
    func passwordProof() throws {
        let key = try InvitationPassword.key(for: "correct horse battery", with: Self.parameters)
        // The same password gives the same key; a composed and a decomposed "é" are the same password.
        #expect(try InvitationPassword.key(for: "correct horse battery", with: Self.parameters) == key)
        #expect(
            try InvitationPassword.key(for: "caf\u{E9}-password", with: Self.parameters)
                == InvitationPassword.key(for: "cafe\u{301}-password", with: Self.parameters))
        let challenge = InvitationPassword.Challenge(
            invitation: Self.invitation().id, session: UUID(), operatorDN: "uid=lena.wolf,ou=People,dc=corp,dc=example")
        let proof = InvitationPassword.proof(with: key, for: challenge)
        #expect(InvitationPassword.isValid(proof, with: key, for: challenge))
        let wrong = try InvitationPassword.key(for: "correct horse battery!", with: Self.parameters)
        #expect(
            !InvitationPassword.isValid(
                InvitationPassword.proof(with: wrong, for: challenge), with: key, for: challenge))
        // A proof answers one challenge: another nonce, session or operator is another question.
        var other = challenge
        other.nonce =
            InvitationPassword.Challenge(invitation: challenge.invitation, session: UUID(), operatorDN: "x")
            .nonce
        #expect(!InvitationPassword.isValid(proof, with: key, for: other))
        other = challenge
        other.operatorDN = "uid=tom.berger,ou=People,dc=corp,dc=example"
        #expect(!InvitationPassword.isValid(proof, with: key, for: other))

        // Sealed, only the machine opens it, and only for the same challenge.
        let sealed = try InvitationPassword.SealedProof(proof, of: challenge, to: Self.machineKey.publicKey)
        #expect(sealed.open(with: Self.machineKey, for: challenge) == proof)
        #expect(sealed.open(with: Self.otherKey, for: challenge) == nil)
        #expect(sealed.open(with: Self.machineKey, for: other) == nil)
        var tampered = sealed
        var box = Data(base64Encoded: sealed.box)!
        box[box.count / 2] ^= 0x80
        tampered.box = box.base64EncodedString()
        #expect(tampered.open(with: Self.machineKey, for: challenge) == nil)
        // Nothing in the sealed proof is the proof.
        #expect(!sealed.box.contains(proof.base64EncodedString()))
    }

    @Test("passwords and key settings outside the bounds are refused before any work")
    func bounds() throws {
        #expect(throws: InvitationPasswordError.tooShort(8)) {
            try InvitationPassword.key(for: "short", with: Self.parameters)
        }
        #expect(throws: InvitationPasswordError.tooLong(256)) {
            try InvitationPassword.key(for: String(repeating: "a", count: 257), with: Self.parameters)
        }
        for bad in [
            InvitationPassword.Parameters(kdf: "md5", salt: Self.parameters.salt, n: 1 << 15, r: 8, p: 1),
            .init(kdf: "scrypt", salt: Self.parameters.salt, n: 1 << 30, r: 8, p: 1),
            .init(kdf: "scrypt", salt: Self.parameters.salt, n: 1 << 4, r: 8, p: 1),
            .init(kdf: "scrypt", salt: Self.parameters.salt, n: 30_000, r: 8, p: 1),
            .init(kdf: "scrypt", salt: "c2hvcnQ=", n: 1 << 15, r: 8, p: 1),
        ] {
            #expect(throws: InvitationPasswordError.unacceptableParameters) {
                try InvitationPassword.key(for: "long enough password", with: bad)
            }
        }
        let fresh = InvitationPassword.Parameters.fresh()
        #expect(fresh.isAcceptable && fresh.salt != InvitationPassword.Parameters.fresh().salt)
    }

    @Test("the machine's decision is signed; a changed verdict or another key does not verify")
    func decision() throws {
        let decision = try InvitationDecision(
            machine: "ws-0101", invitation: Self.invitation().id, session: UUID(), operatorDN: "uid=lena.wolf",
            outcome: .refused, reason: InvitationError.wrongPassword(remaining: 3).code, failures: 2,
            at: AuditTimestamp(Self.created), signingWith: Self.machineKey)
        #expect(decision.isSigned(by: Self.machineKey.publicKey))
        #expect(!decision.isSigned(by: Self.otherKey.publicKey))
        #expect(decision.error == .wrongPassword(remaining: 3))
        var changed = decision
        changed.outcome = .accepted
        #expect(!changed.isSigned(by: Self.machineKey.publicKey))
        let decoded = try JSONDecoder().decode(InvitationDecision.self, from: JSONEncoder().encode(decision))
        #expect(decoded.isSigned(by: Self.machineKey.publicKey))
    }

    @Test("the machine's question about the helpdesk holds for its key, its name and a minute either side")
    func presenceQuestion() throws {
        let now = Date()
        let question = try PresenceQuestion(machine: "ws-0101", at: now, signingWith: Self.machineKey)
        #expect(question.isValid(signedBy: Self.machineKey.publicKey, at: now + 59))
        #expect(question.isValid(signedBy: Self.machineKey.publicKey, at: now - 59))
        #expect(!question.isValid(signedBy: Self.machineKey.publicKey, at: now + 61))
        #expect(!question.isValid(signedBy: P256.Signing.PrivateKey().publicKey, at: now))
        var renamed = question
        renamed.machine = "ws-0102"
        #expect(!renamed.isValid(signedBy: Self.machineKey.publicKey, at: now))
        var later = question
        later.time = Invitation.timeText(now + 30)
        #expect(!later.isValid(signedBy: Self.machineKey.publicKey, at: now))
    }
}
