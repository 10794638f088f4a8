public import Crypto
import Foundation

/// A signed statement of the chain's head: "the audit log had `sequence` events and the last one's hash was
/// `hash` at `time`". Kept in the database and exported for anchoring elsewhere (a ticket, a WORM store, a
/// timestamping service): once a checkpoint is outside, nobody can rewrite the events it covers unnoticed, not
/// even with full control of the database.
public struct AuditCheckpoint: Sendable, Hashable, Codable {
    /// The head's sequence: how many events the chain had.
    public var sequence: Int64
    /// The head's hash, as 64 lowercase hex digits.
    public var hash: String
    /// When the checkpoint was made.
    public var time: String
    /// The signer's Ed25519 public key, base64 of its 32 raw bytes.
    public var publicKey: String
    /// The Ed25519 signature of `signedMessage`, base64.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case sequence, hash, time, signature
        case publicKey = "public_key"
    }

    /// Creates a checkpoint as stored.
    public init(sequence: Int64, hash: String, time: String, publicKey: String, signature: String) {
        self.sequence = sequence
        self.hash = hash
        self.time = time
        self.publicKey = publicKey
        self.signature = signature
    }

    /// Signs `head` at `time` with `key`.
    public init(signing head: AuditChainHead, at time: AuditTimestamp, with key: Curve25519.Signing.PrivateKey) throws {
        sequence = head.sequence
        hash = Hex.encode(head.hash)
        self.time = time.description
        publicKey = key.publicKey.rawRepresentation.base64EncodedString()
        signature = try key.signature(for: Self.message(sequence: sequence, hash: hash, time: self.time))
            .base64EncodedString()
    }

    /// The exact bytes signed: `{"hash":"<hex>","sequence":<n>,"time":"<time>"}`, canonical JSON.
    public var signedMessage: [UInt8] { Self.message(sequence: sequence, hash: hash, time: time) }

    /// Whether the signature is valid for the checkpoint's own public key. Whether that key is trusted is a
    /// separate question: compare it with the server's configured key.
    public var hasValidSignature: Bool {
        guard let keyBytes = Data(base64Encoded: publicKey),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyBytes),
            let signatureBytes = Data(base64Encoded: signature)
        else { return false }
        return key.isValidSignature(signatureBytes, for: signedMessage)
    }

    private static func message(sequence: Int64, hash: String, time: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"hash\":")
        writer.string(hash)
        writer.raw(",\"sequence\":")
        writer.raw(String(sequence))
        writer.raw(",\"time\":")
        writer.string(time)
        writer.raw("}")
        return writer.bytes
    }
}

/// The server's checkpoint signing key, read from a PEM file as `openssl genpkey -algorithm ed25519` writes it.
public enum AuditSigningKey {
    /// Why a key file cannot be used.
    public struct FormatError: Error, Sendable, CustomStringConvertible {
        /// What is wrong.
        public var description: String
    }

    // DER of PKCS #8 PrivateKeyInfo for Ed25519 (RFC 8410) up to the 32-byte seed, and of SubjectPublicKeyInfo up
    // to the 32-byte key.
    private static let privateKeyPrefix: [UInt8] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ]
    private static let publicKeyPrefix: [UInt8] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ]

    /// The key in `pem`, a `PRIVATE KEY` block holding an Ed25519 key.
    /// - Throws: `FormatError` naming what is wrong.
    public static func privateKey(pem: String) throws(FormatError) -> Curve25519.Signing.PrivateKey {
        let der = try block(named: "PRIVATE KEY", in: pem)
        guard der.count == privateKeyPrefix.count + 32, der.starts(with: privateKeyPrefix) else {
            throw FormatError(
                description:
                    "the key is not an Ed25519 private key in PKCS #8 form (make one with: openssl genpkey -algorithm ed25519)"
            )
        }
        do {
            return try Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
        } catch {
            throw FormatError(description: "the Ed25519 key cannot be used")
        }
    }

    /// The public key as a PEM `PUBLIC KEY` block, which `openssl pkeyutl -verify -pubin` reads.
    public static func publicKeyPEM(_ key: Curve25519.Signing.PublicKey) -> String {
        let der = Data(publicKeyPrefix + Array(key.rawRepresentation))
        let base64 = der.base64EncodedString()
        return "-----BEGIN PUBLIC KEY-----\n\(base64)\n-----END PUBLIC KEY-----\n"
    }

    private static func block(named label: String, in pem: String) throws(FormatError) -> [UInt8] {
        let begin = "-----BEGIN \(label)-----"
        let end = "-----END \(label)-----"
        guard let start = pem.range(of: begin), let stop = pem.range(of: end, range: start.upperBound..<pem.endIndex)
        else {
            throw FormatError(description: "the file has no \(begin) block")
        }
        let body = pem[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
        guard let der = Data(base64Encoded: String(body)) else {
            throw FormatError(description: "the \(label) block is not valid base64")
        }
        return Array(der)
    }
}
