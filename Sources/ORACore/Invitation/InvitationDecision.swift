public import Crypto
public import Foundation

/// What the machine decided about one use of its invitation, signed with its device key as it signs consent: the
/// audit log keeps proof that the machine, not the server, let the helper through (or did not).
public struct InvitationDecision: Sendable, Hashable, Codable {
    /// The machine's verdict.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// The password was proved (or none was needed): the person at the machine is asked next.
        case accepted
        /// Refused: see `reason`.
        case refused
        /// A wrong password, the last allowed: the invitation is locked from now on.
        case locked
    }

    /// The machine.
    public var machine: String
    /// The invitation.
    public var invitation: UUID
    /// The session it was to open.
    public var session: UUID
    /// The operator who tried, by DN.
    public var operatorDN: String
    /// The verdict.
    public var outcome: Outcome
    /// Why it was refused (an `InvitationError` code); `nil` when accepted.
    public var reason: String?
    /// Wrong passwords so far.
    public var failures: Int
    /// When, as `AuditTimestamp` text.
    public var time: String
    /// Base64 of the raw ECDSA signature of `signedMessage` by the machine's device key.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case machine, invitation, session, outcome, reason, failures, time, signature
        case operatorDN = "operator_dn"
    }

    /// Decides and signs.
    public init(
        machine: String, invitation: UUID, session: UUID, operatorDN: String, outcome: Outcome, reason: String?,
        failures: Int, at time: AuditTimestamp, signingWith key: P256.Signing.PrivateKey
    ) throws {
        self.machine = machine
        self.invitation = invitation
        self.session = session
        self.operatorDN = operatorDN
        self.outcome = outcome
        self.reason = reason
        self.failures = failures
        self.time = time.description
        self.signature = ""
        self.signature = try key.base64Signature(for: signedMessage)
    }

    /// The canonical JSON signed, with `"purpose":"ora.invitation.decision.v1"`.
    public var signedMessage: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"failures\":")
        writer.raw(String(failures))
        writer.raw(",\"invitation\":")
        writer.string(invitation.uuidString.lowercased())
        writer.raw(",\"machine\":")
        writer.string(machine)
        writer.raw(",\"operator_dn\":")
        writer.string(operatorDN)
        writer.raw(",\"outcome\":")
        writer.string(outcome.rawValue)
        writer.raw(",\"purpose\":\"ora.invitation.decision.v1\",\"reason\":")
        writer.optionalString(reason)
        writer.raw(",\"session\":")
        writer.string(session.uuidString.lowercased())
        writer.raw(",\"time\":")
        writer.string(time)
        writer.raw("}")
        return writer.bytes
    }

    /// Whether `key` signed this decision.
    public func isSigned(by key: P256.Signing.PublicKey) -> Bool {
        key.isValid(base64Signature: signature, for: signedMessage)
    }

    /// The decision as the audit log keeps it.
    public var auditValue: AuditValue {
        var fields: [String: AuditValue] = [
            "machine": .string(machine), "invitation": .string(invitation.uuidString.lowercased()),
            "session": .string(session.uuidString.lowercased()), "operator_dn": .string(operatorDN),
            "outcome": .string(outcome.rawValue), "failures": .integer(Int64(failures)), "time": .string(time),
            "signature": .string(signature),
        ]
        fields["reason"] = reason.map(AuditValue.string) ?? .null
        return .object(fields)
    }

    /// Why the helper was refused, as the machine said; `nil` when accepted.
    public var error: InvitationError? {
        switch outcome {
        case .accepted: nil
        case .locked: .locked
        case .refused:
            InvitationError(
                code: reason ?? "", remaining: max(0, InvitationDecision.allowedFailures - failures)) ?? .notGenuine
        }
    }

    /// Wrong passwords after which an invitation locks.
    public static let allowedFailures = 5
}
