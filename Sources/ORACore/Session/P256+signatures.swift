import Crypto
import Foundation

extension P256.Signing.PrivateKey {
    /// Signs `message`: base64 of the raw 64-byte ECDSA signature, the form ora's messages carry.
    func base64Signature(for message: [UInt8]) throws -> String {
        try signature(for: message).rawRepresentation.base64EncodedString()
    }
}

extension P256.Signing.PublicKey {
    /// Whether `signature`, base64 of a raw 64-byte ECDSA signature, is this key's signature of `message`.
    func isValid(base64Signature signature: String, for message: [UInt8]) -> Bool {
        guard let bytes = Data(base64Encoded: signature),
            let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: bytes)
        else { return false }
        return isValidSignature(parsed, for: message)
    }
}
