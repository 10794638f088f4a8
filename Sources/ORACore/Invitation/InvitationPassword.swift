public import Crypto
public import Foundation
import _CryptoExtras

/// How the helper proves that they know an invitation's password without the password, or anything that would let
/// someone check a guess, reaching the server.
///
/// The machine keeps `key = scrypt(password, salt)` and nothing else of the password. To open the invitation, the
/// helper's tool derives the same key from the password typed, answers the machine's fresh challenge with
/// `HMAC-SHA256(key, challenge)` and seals that proof to the machine's device key (ECDH on P-256, HKDF-SHA256,
/// AES-GCM), so that the server, which relays it, holds only a box it cannot open. The machine opens it, compares,
/// and counts wrong answers.
public enum InvitationPassword {
    /// How the key is derived from a password: scrypt with this salt and cost, written into the invitation.
    public struct Parameters: Sendable, Hashable, Codable {
        /// `scrypt`.
        public var kdf: String
        /// Base64 of 16 random bytes.
        public var salt: String
        /// The CPU and memory cost (a power of two).
        public var n: Int
        /// The block size.
        public var r: Int
        /// The parallelism.
        public var p: Int

        /// Fresh parameters: a new salt, and a cost of about a tenth of a second and 32 MiB per guess.
        public static func fresh() -> Parameters {
            Parameters(
                kdf: "scrypt",
                salt: Data(SymmetricKey(size: .init(bitCount: 128)).withUnsafeBytes { Array($0) })
                    .base64EncodedString(), n: 1 << 15, r: 8, p: 1)
        }

        /// Creates parameters.
        public init(kdf: String, salt: String, n: Int, r: Int, p: Int) {
            self.kdf = kdf
            self.salt = salt
            self.n = n
            self.r = r
            self.p = p
        }

        /// Whether a helper's tool should derive with these: the known function, and a cost neither trivial nor
        /// so large that a forged invitation could make it exhaust the helper's memory.
        public var isAcceptable: Bool {
            kdf == "scrypt" && n >= 1 << 14 && n <= 1 << 20 && n.nonzeroBitCount == 1 && (1...16).contains(r)
                && (1...4).contains(p) && Data(base64Encoded: salt)?.count == 16
        }
    }

    /// The shortest password accepted.
    public static let shortest = 8
    /// The longest password accepted.
    public static let longest = 256

    /// The key `password` gives with `parameters`.
    /// - Throws: `InvitationPasswordError.unacceptableParameters`, or `.tooShort`/`.tooLong`.
    public static func key(
        for password: String, with parameters: Parameters
    ) throws(InvitationPasswordError)
        -> SymmetricKey
    {
        guard parameters.isAcceptable, let salt = Data(base64Encoded: parameters.salt) else {
            throw .unacceptableParameters
        }
        let characters = password.count
        guard characters >= shortest else { throw .tooShort(shortest) }
        guard characters <= longest else { throw .tooLong(longest) }
        do {
            return try KDF.Scrypt.deriveKey(
                from: Array(password.precomposedStringWithCanonicalMapping.utf8), salt: salt, outputByteCount: 32,
                rounds: parameters.n, blockSize: parameters.r, parallelism: parameters.p,
                maxMemory: 128 * parameters.n * parameters.r * parameters.p + 1024 * 1024)
        } catch {
            throw .unacceptableParameters
        }
    }

    /// The proof that the holder of `key` answers `challenge`.
    public static func proof(with key: SymmetricKey, for challenge: Challenge) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: challenge.signedMessage, using: key))
    }

    /// Whether `proof` answers `challenge` with `key`, compared in constant time.
    public static func isValid(_ proof: Data, with key: SymmetricKey, for challenge: Challenge) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: challenge.signedMessage, using: key)
    }

    /// What the machine asks the helper's tool to answer: fresh for each attempt, and bound to the invitation, the
    /// session it would open and the operator who would open it, so that a proof is good for that use only.
    public struct Challenge: Sendable, Hashable, Codable {
        /// The invitation.
        public var invitation: UUID
        /// The session it would open.
        public var session: UUID
        /// The operator who opens it, by DN.
        public var operatorDN: String
        /// Base64 of 32 random bytes from the machine.
        public var nonce: String

        /// Creates a challenge with a fresh nonce.
        public init(invitation: UUID, session: UUID, operatorDN: String) {
            self.init(
                invitation: invitation, session: session, operatorDN: operatorDN,
                nonce: SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString())
        }

        /// Creates a challenge.
        public init(invitation: UUID, session: UUID, operatorDN: String, nonce: String) {
            self.invitation = invitation
            self.session = session
            self.operatorDN = operatorDN
            self.nonce = nonce
        }

        enum CodingKeys: String, CodingKey {
            case invitation, session, nonce
            case operatorDN = "operator_dn"
        }

        /// The canonical JSON the proof authenticates, with `"purpose":"ora.invitation.proof.v1"`.
        public var signedMessage: [UInt8] {
            var writer = JSONWriter()
            writer.raw("{\"invitation\":")
            writer.string(invitation.uuidString.lowercased())
            writer.raw(",\"nonce\":")
            writer.string(nonce)
            writer.raw(",\"operator_dn\":")
            writer.string(operatorDN)
            writer.raw(",\"purpose\":\"ora.invitation.proof.v1\",\"session\":")
            writer.string(session.uuidString.lowercased())
            writer.raw("}")
            return writer.bytes
        }
    }

    /// A proof sealed to the machine's device key: only the machine can open it.
    public struct SealedProof: Sendable, Hashable, Codable {
        /// Base64 of the sender's one-time P-256 public key (X9.63).
        public var ephemeralKey: String
        /// Base64 of the AES-GCM box (nonce, ciphertext, tag).
        public var box: String

        enum CodingKeys: String, CodingKey {
            case box
            case ephemeralKey = "ephemeral_key"
        }

        /// Creates a sealed proof from its parts.
        public init(ephemeralKey: String, box: String) {
            self.ephemeralKey = ephemeralKey
            self.box = box
        }

        /// Seals `proof` of `challenge` to `machineKey`.
        public init(_ proof: Data, of challenge: Challenge, to machineKey: P256.Signing.PublicKey) throws {
            let ephemeral = P256.KeyAgreement.PrivateKey()
            let recipient = try P256.KeyAgreement.PublicKey(rawRepresentation: machineKey.rawRepresentation)
            let key = try Self.boxKey(ephemeral.sharedSecretFromKeyAgreement(with: recipient), challenge: challenge)
            let sealed = try AES.GCM.seal(proof, using: key, authenticating: challenge.signedMessage)
            ephemeralKey = ephemeral.publicKey.x963Representation.base64EncodedString()
            box = (sealed.combined ?? Data()).base64EncodedString()
        }

        /// The proof inside, opened with the machine's device key; `nil` when it is not a box for this challenge
        /// and key.
        public func open(with deviceKey: P256.Signing.PrivateKey, for challenge: Challenge) -> Data? {
            guard let ephemeralBytes = Data(base64Encoded: ephemeralKey), ephemeralBytes.count <= 200,
                let boxBytes = Data(base64Encoded: box), boxBytes.count <= 200,
                let sender = try? P256.KeyAgreement.PublicKey(x963Representation: ephemeralBytes),
                let own = try? P256.KeyAgreement.PrivateKey(rawRepresentation: deviceKey.rawRepresentation),
                let secret = try? own.sharedSecretFromKeyAgreement(with: sender),
                let sealed = try? AES.GCM.SealedBox(combined: boxBytes)
            else { return nil }
            return try? AES.GCM.open(
                sealed, using: Self.boxKey(secret, challenge: challenge), authenticating: challenge.signedMessage)
        }

        private static func boxKey(_ secret: SharedSecret, challenge: Challenge) -> SymmetricKey {
            secret.hkdfDerivedSymmetricKey(
                using: SHA256.self, salt: Array(SHA256.hash(data: challenge.signedMessage)),
                sharedInfo: Array("ora.invitation.proof.seal.v1".utf8), outputByteCount: 32)
        }
    }
}

/// Why a password cannot be used or proved.
public enum InvitationPasswordError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Shorter than the shortest accepted.
    case tooShort(Int)
    /// Longer than the longest accepted.
    case tooLong(Int)
    /// The invitation names a key derivation the tools do not use.
    case unacceptableParameters

    public var description: String {
        switch self {
        case .tooShort(let shortest): "the password is too short: at least \(shortest) characters"
        case .tooLong(let longest): "the password is too long: at most \(longest) characters"
        case .unacceptableParameters: "the invitation's password settings are not ones ora uses"
        }
    }
}
