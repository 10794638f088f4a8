public import Crypto
public import Foundation

/// A machine's question "who at the helpdesk may help me now?", signed with its device key so that the server
/// answers only enrolled machines about themselves; it asks nothing else and changes nothing, and is good for a minute.
public struct PresenceQuestion: Sendable, Hashable, Codable {
    /// The machine asking, as enrolled.
    public var machine: String
    /// When it asked, as `Invitation.timeText` writes it.
    public var time: String
    /// Base64 of the raw ECDSA signature of `signedMessage` by the machine's device key.
    public var signature: String

    /// How far from the server's clock a question may be, either way.
    public static let tolerance: TimeInterval = 60

    /// Asks and signs.
    public init(machine: String, at time: Date, signingWith key: P256.Signing.PrivateKey) throws {
        self.machine = machine
        self.time = Invitation.timeText(time)
        self.signature = ""
        self.signature = try key.base64Signature(for: signedMessage)
    }

    /// The canonical JSON signed, with `"purpose":"ora.presence.v1"`.
    public var signedMessage: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"machine\":")
        writer.string(machine)
        writer.raw(",\"purpose\":\"ora.presence.v1\",\"time\":")
        writer.string(time)
        writer.raw("}")
        return writer.bytes
    }

    /// Whether `key` signed it and it was asked within `tolerance` of `now`.
    public func isValid(signedBy key: P256.Signing.PublicKey, at now: Date) -> Bool {
        guard let asked = Invitation.time(time), abs(asked.timeIntervalSince(now)) <= Self.tolerance else {
            return false
        }
        return key.isValid(base64Signature: signature, for: signedMessage)
    }
}
