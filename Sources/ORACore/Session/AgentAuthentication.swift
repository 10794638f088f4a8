public import Crypto
import Foundation

/// How an agent proves, each time it connects, that it holds its machine's device key: the server sends a fresh
/// random nonce, and the agent signs the nonce together with the machine's name and the server's name. A signature
/// is good for that one nonce and that one server, so it cannot be replayed later or relayed to another server.
public struct AgentAuthentication: Sendable, Hashable {
    /// The server's name, as the agent addressed it (the host of its URL).
    public var server: String
    /// The machine that answers.
    public var machine: String
    /// The server's fresh nonce, base64.
    public var nonce: String

    /// Creates the statement to sign or check.
    public init(server: String, machine: String, nonce: String) {
        self.server = server
        self.machine = machine
        self.nonce = nonce
    }

    /// A fresh nonce: 32 random bytes, base64.
    public static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }

    /// The exact bytes signed: canonical JSON with a purpose no other signed message of ora has.
    public var signedMessage: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"machine\":")
        writer.string(machine)
        writer.raw(",\"nonce\":")
        writer.string(nonce)
        writer.raw(",\"purpose\":\"ora.agent-authentication.v1\",\"server\":")
        writer.string(server)
        writer.raw("}")
        return writer.bytes
    }

    /// The agent's answer: base64 of the P-256 ECDSA signature (64 raw bytes).
    public func sign(with key: P256.Signing.PrivateKey) throws -> String {
        try key.base64Signature(for: signedMessage)
    }

    /// Whether `signature` is the answer of the holder of `key`.
    public func isValid(signature: String, for key: P256.Signing.PublicKey) -> Bool {
        key.isValid(base64Signature: signature, for: signedMessage)
    }
}

/// A machine's device key in text form: base64 of the public key's DER (SubjectPublicKeyInfo), which
/// `openssl pkey -pubin -inform DER` reads.
public enum DevicePublicKey {
    /// The text form of `key`.
    public static func text(_ key: P256.Signing.PublicKey) -> String {
        key.derRepresentation.base64EncodedString()
    }

    /// The key written as `text`.
    /// - Throws: `DevicePublicKeyError` when it is not base64 of a P-256 public key.
    public static func parse(_ text: String) throws(DevicePublicKeyError) -> P256.Signing.PublicKey {
        guard let bytes = Data(base64Encoded: text) else { throw DevicePublicKeyError() }
        do {
            return try P256.Signing.PublicKey(derRepresentation: bytes)
        } catch {
            throw DevicePublicKeyError()
        }
    }
}

/// A device key that is not a P-256 public key.
public struct DevicePublicKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Creates the error.
    public init() {}

    public var description: String {
        "the device key is not a P-256 public key in base64 DER (SubjectPublicKeyInfo)"
    }
}
