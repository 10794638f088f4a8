import Crypto
import Foundation
import ORACore
import Testing

@testable import ORAAgent

@Suite("The machine decides about its invitations")
struct InvitationStoreTests {
    static let created = Date(timeIntervalSince1970: 1_796_563_800)
    static let lena = "uid=lena.wolf,ou=People,dc=corp,dc=example"
    static let parameters = InvitationPassword.Parameters(
        kdf: "scrypt", salt: Data(repeating: 9, count: 16).base64EncodedString(), n: 1 << 14, r: 8, p: 1)

    /// A store in a fresh directory, with one invitation protected by `password` (none when nil).
    static func store(
        password: String? = "correct horse battery", lifetime: TimeInterval = 3600
    ) throws -> (InvitationStore, SignedInvitation, P256.Signing.PrivateKey) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ora-invitations-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = InvitationStore(state: AgentState(directory: directory.path))
        let key = P256.Signing.PrivateKey()
        let invitation = Invitation(
            server: "https://ora.corp.example", machine: "ws-0101",
            askedBy: .init(account: "jonas.meyer", displayName: "Jonas Meyer"), message: nil, channel: .file,
            createdAt: created, expiresAt: created + lifetime, password: password == nil ? nil : parameters,
            machineKey: key.publicKey)
        let signed = try SignedInvitation(invitation, signingWith: key)
        try store.add(signed, key: try password.map { try InvitationPassword.key(for: $0, with: parameters) })
        return (store, signed, key)
    }

    /// The helper's sealed answer to `challenge` with `password`.
    static func answer(
        _ challenge: InvitationPassword.Challenge, password: String, to key: P256.Signing.PrivateKey
    ) throws -> InvitationPassword.SealedProof {
        let proof = InvitationPassword.proof(
            with: try InvitationPassword.key(for: password, with: parameters), for: challenge)
        return try InvitationPassword.SealedProof(proof, of: challenge, to: key.publicKey)
    }

    @Test("the right password uses the invitation once; a second use is refused")
    func rightPassword() throws {
        let (store, signed, key) = try Self.store()
        let id = signed.invitation.id
        let challenge = try #require(try store.begin(id, session: UUID(), by: Self.lena, at: Self.created + 60))
        #expect(try store.records()[0].status(at: Self.created + 60) == .opened)
        let verdict = store.answer(
            challenge, with: try Self.answer(challenge, password: "correct horse battery", to: key), deviceKey: key,
            at: Self.created + 61)
        #expect(verdict.outcome == .accepted && verdict.reason == nil)
        #expect(try store.records()[0].status(at: Self.created + 62) == .used)
        #expect(throws: InvitationError.used) {
            try store.begin(id, session: UUID(), by: Self.lena, at: Self.created + 63)
        }
        // The same proof again (a replay of the accepted answer) is refused too.
        let replay = store.answer(
            challenge, with: try Self.answer(challenge, password: "correct horse battery", to: key), deviceKey: key,
            at: Self.created + 64)
        #expect(replay.outcome == .refused && replay.reason == .used)
    }

    @Test("five wrong passwords lock the invitation; the right one afterwards is refused")
    func lockAfterFive() throws {
        let (store, signed, key) = try Self.store()
        for attempt in 1...5 {
            let challenge = try #require(
                try store.begin(signed.invitation.id, session: UUID(), by: Self.lena, at: Self.created + 60))
            let verdict = store.answer(
                challenge, with: try Self.answer(challenge, password: "wrong password \(attempt)", to: key),
                deviceKey: key, at: Self.created + 60)
            #expect(verdict.failures == attempt)
            if attempt < 5 {
                #expect(verdict.outcome == .refused && verdict.reason == .wrongPassword(remaining: 5 - attempt))
            } else {
                #expect(verdict.outcome == .locked && verdict.reason == .locked)
            }
        }
        #expect(throws: InvitationError.locked) {
            try store.begin(signed.invitation.id, session: UUID(), by: Self.lena, at: Self.created + 61)
        }
        #expect(try store.records()[0].status(at: Self.created + 61) == .locked)
    }

    @Test("a proof sealed to another key, or answering another challenge, counts as a wrong password")
    func misdirectedProof() throws {
        let (store, signed, key) = try Self.store()
        let challenge = try #require(
            try store.begin(signed.invitation.id, session: UUID(), by: Self.lena, at: Self.created))
        let elsewhere = try Self.answer(challenge, password: "correct horse battery", to: P256.Signing.PrivateKey())
        #expect(store.answer(challenge, with: elsewhere, deviceKey: key, at: Self.created).outcome == .refused)
        var other = challenge
        other.operatorDN = "uid=tom.berger,ou=People,dc=corp,dc=example"
        let forOther = try Self.answer(other, password: "correct horse battery", to: key)
        let verdict = store.answer(challenge, with: forOther, deviceKey: key, at: Self.created)
        #expect(verdict.outcome == .refused && verdict.failures == 2)
    }

    @Test("expired by the machine's clock, revoked, or unknown: refused before any password")
    func refusals() throws {
        let (store, signed, _) = try Self.store(lifetime: 600)
        let id = signed.invitation.id
        #expect(throws: InvitationError.expired) {
            try store.begin(id, session: UUID(), by: Self.lena, at: Self.created + 600)
        }
        #expect(throws: InvitationError.unknown) {
            try store.begin(UUID(), session: UUID(), by: Self.lena, at: Self.created)
        }
        let revoked = try store.revoke(String(id.uuidString.prefix(6)), at: Self.created + 10)
        #expect(revoked.status(at: Self.created + 11) == .revoked)
        #expect(throws: InvitationError.revoked) {
            try store.begin(id, session: UUID(), by: Self.lena, at: Self.created + 11)
        }
        // Revoked is final: revoking again says so.
        #expect(throws: AgentError.self) { try store.revoke(id.uuidString, at: Self.created + 12) }
        #expect(throws: AgentError.invalidArgument("no invitation zzzz on this machine")) {
            try store.revoke("zzzz", at: Self.created)
        }
    }

    @Test("without a password the first use takes it; the store file can be read by its owner only")
    func noPassword() throws {
        let (store, signed, _) = try Self.store(password: nil)
        #expect(try store.begin(signed.invitation.id, session: UUID(), by: Self.lena, at: Self.created) == nil)
        #expect(try store.records()[0].status(at: Self.created) == .used)
        let attributes = try FileManager.default.attributesOfItem(atPath: store.file.path)
        #expect((attributes[.posixPermissions] as? Int ?? 0) & 0o077 == 0)
    }

    @Test("the server is told each invitation once made, then once revoked or expired, in that order")
    func reports() throws {
        let (store, signed, _) = try Self.store(lifetime: 600)
        let id = signed.invitation.id
        #expect(try store.unreported(at: Self.created).map(\.1) == ["created"])
        try store.noteReported(id, status: "created")
        #expect(try store.unreported(at: Self.created).isEmpty)
        // Revoked while the server was unreachable: reported when it is back, once.
        _ = try store.revoke(id.uuidString, at: Self.created + 10)
        #expect(try store.unreported(at: Self.created + 11).map(\.1) == ["revoked"])
        try store.noteReported(id, status: "revoked")
        #expect(try store.unreported(at: Self.created + 700).isEmpty)
        // One nobody revoked expires, and that is reported.
        let (other, otherSigned, _) = try Self.store(lifetime: 600)
        try other.noteReported(otherSigned.invitation.id, status: "created")
        #expect(try other.unreported(at: Self.created + 599).isEmpty)
        #expect(try other.unreported(at: Self.created + 600).map(\.1) == ["expired"])
    }
}
