import Crypto
public import Foundation

/// What the person at the machine is asked to accept: who offers help, to do what, why, and under which policy.
/// The agent shows it as it is and signs its answer over the offer's hash, so the audit log holds proof of what
/// the novice was shown.
public struct Offer: Sendable, Hashable, Codable {
    /// The helper, as the directory names them.
    public struct Helper: Sendable, Hashable, Codable {
        /// The account name, such as `hannah.fischer`.
        public var account: String
        /// The distinguished name of the helper's directory entry.
        public var dn: String
        /// The name to show, such as "Hannah Fischer".
        public var displayName: String
        /// The helper's job title, when the directory has one.
        public var title: String?
        /// The helper's department, when the directory has one.
        public var department: String?

        /// Creates a helper.
        public init(account: String, dn: String, displayName: String, title: String? = nil, department: String? = nil) {
            self.account = account
            self.dn = dn
            self.displayName = displayName
            self.title = title
            self.department = department
        }

        /// The helper as `person` logged in: their names, title and department as the directory gave them.
        public init(_ person: Operator) {
            self.init(
                account: person.account, dn: person.dn, displayName: person.displayName, title: person.title,
                department: person.department)
        }

        enum CodingKeys: String, CodingKey {
            case account, dn, title, department
            case displayName = "display_name"
        }
    }

    /// The session the offer starts.
    public var session: UUID
    /// The machine offered to, by name.
    public var machine: String
    /// Who offers.
    public var helper: Helper
    /// The most the helper may do: `control` means the helper may later ask for control, which the novice is
    /// asked separately.
    public var mode: AccessMode
    /// The ticket the offer is about, if any.
    public var ticket: String?
    /// The helper's reason, if given.
    public var reason: String?
    /// The active policy version that allowed the offer.
    public var policyVersion: Int64
    /// The policies that allowed it.
    public var policies: [String]
    /// How many seconds the novice has to answer.
    public var consentTimeoutSeconds: Int64
    /// When the server made the offer, as `AuditTimestamp` text.
    public var issuedAt: String
    /// The invitation of the person at the machine that this offer answers, if it answers one: the machine accepted
    /// the helper's password for it (or it had none) just before.
    public var invitation: UUID?

    /// Creates an offer.
    public init(
        session: UUID,
        machine: String,
        helper: Helper,
        mode: AccessMode,
        ticket: String?,
        reason: String?,
        policyVersion: Int64,
        policies: [String],
        consentTimeoutSeconds: Int64,
        issuedAt: AuditTimestamp,
        invitation: UUID? = nil
    ) {
        self.session = session
        self.machine = machine
        self.helper = helper
        self.mode = mode
        self.ticket = ticket
        self.reason = reason
        self.policyVersion = policyVersion
        self.policies = policies
        self.consentTimeoutSeconds = consentTimeoutSeconds
        self.issuedAt = issuedAt.description
        self.invitation = invitation
    }

    enum CodingKeys: String, CodingKey {
        case session, machine, helper, mode, ticket, reason, policies, invitation
        case policyVersion = "policy_version"
        case consentTimeoutSeconds = "consent_timeout_seconds"
        case issuedAt = "issued_at"
    }

    /// The canonical encoding: every field present (null when empty), keys sorted, compact JSON, written as the
    /// audit log's canonical encoding writes its strings. The helper's title and department, and the invitation, are
    /// the exception: written only when there are any, so that offers made before they existed keep their hashes.
    public var canonicalEncoding: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"consent_timeout_seconds\":")
        writer.raw(String(consentTimeoutSeconds))
        writer.raw(",\"helper\":{\"account\":")
        writer.string(helper.account)
        if let department = helper.department {
            writer.raw(",\"department\":")
            writer.string(department)
        }
        writer.raw(",\"display_name\":")
        writer.string(helper.displayName)
        writer.raw(",\"dn\":")
        writer.string(helper.dn)
        if let title = helper.title {
            writer.raw(",\"title\":")
            writer.string(title)
        }
        writer.raw("}")
        if let invitation {
            writer.raw(",\"invitation\":")
            writer.string(invitation.uuidString.lowercased())
        }
        writer.raw(",\"issued_at\":")
        writer.string(issuedAt)
        writer.raw(",\"machine\":")
        writer.string(machine)
        writer.raw(",\"mode\":")
        writer.string(mode.rawValue)
        writer.raw(",\"policies\":[")
        for (index, name) in policies.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.string(name)
        }
        writer.raw("],\"policy_version\":")
        writer.raw(String(policyVersion))
        writer.raw(",\"reason\":")
        writer.optionalString(reason)
        writer.raw(",\"session\":")
        writer.string(session.uuidString.lowercased())
        writer.raw(",\"ticket\":")
        writer.optionalString(ticket)
        writer.raw("}")
        return writer.bytes
    }

    /// SHA-256 of the canonical encoding, as 64 lowercase hex digits: what a consent receipt names.
    public var hash: String {
        Hex.encode(SHA256.hash(data: canonicalEncoding))
    }
}

extension Offer.Helper {
    /// The helper's name as the person at the machine is shown it, escaped: "Lena Wolf (lena.wolf)".
    public var nameText: String {
        "\(AuditText.escaped(displayName)) (\(AuditText.escaped(account)))"
    }

    /// The helper's title and department as shown, escaped: "Position: Senior Support Engineer, IT Service Desk";
    /// `nil` when the directory has neither.
    public var positionText: String? {
        let parts = [title, department].compactMap(\.self).filter { !$0.isEmpty }
        return parts.isEmpty ? nil : "Position: " + parts.map(AuditText.escaped).joined(separator: ", ")
    }
}
