public import Crypto
public import Foundation

/// A request for help made by the person at a machine: which machine, who asked and why, until when, and — when it
/// is protected by a password — how to derive the key that proves the password. The machine signs it with its
/// device key, so that the helper's tools can show that it is genuine; it carries no secret that alone lets anyone
/// in: the password never leaves the machine, and the machine checks every use of the invitation itself.
public struct Invitation: Sendable, Hashable, Codable {
    /// Where the invitation was sent.
    public enum Channel: String, Sendable, Hashable, Codable, CaseIterable {
        /// The helpdesk's live queue.
        case helpdesk
        /// By e-mail, through the server.
        case email
        /// Saved as a file, handed over by the person.
        case file

        /// How an invitation of this channel is sent, as a sentence says it: "for the helpdesk's queue".
        public var phrase: String {
            switch self {
            case .helpdesk: "for the helpdesk's queue"
            case .email: "to be sent by e-mail"
            case .file: "to be saved as a file"
            }
        }
    }

    /// The person who asked, as the machine knows them.
    public struct Person: Sendable, Hashable, Codable {
        /// The account on the machine, such as `jonas.meyer`.
        public var account: String
        /// The name to show, such as "Jonas Meyer"; the account when the machine has no other.
        public var displayName: String

        /// Creates a person.
        public init(account: String, displayName: String) {
            self.account = account
            self.displayName = displayName
        }

        enum CodingKeys: String, CodingKey {
            case account
            case displayName = "display_name"
        }
    }

    /// The invitation's id.
    public var id: UUID
    /// The server's base URL, where the helper opens it.
    public var server: String
    /// The machine that asks, by its enrolled name.
    public var machine: String
    /// Who asked.
    public var askedBy: Person
    /// What the person wrote ("Outlook keeps asking for my password"), if anything.
    public var message: String?
    /// How it was sent.
    public var channel: Channel
    /// The e-mail address it is sent to, for an invitation sent by e-mail (the server sends it there and nowhere
    /// else); `nil` for the other channels.
    public var recipient: String?
    /// When it was made, in UTC, as `2026-12-06T09:00:00Z`.
    public var createdAt: String
    /// When it stops being valid, in the same form. The machine's own clock decides.
    public var expiresAt: String
    /// How the password's key is derived; `nil` for an invitation without a password.
    public var password: InvitationPassword.Parameters?
    /// The machine's device public key (`DevicePublicKey` text), which signs the invitation and to which the
    /// helper's password proof is sealed.
    public var machineKey: String

    /// Creates an invitation.
    public init(
        id: UUID = UUID(), server: String, machine: String, askedBy: Person, message: String?, channel: Channel,
        createdAt: Date, expiresAt: Date, password: InvitationPassword.Parameters?, machineKey: P256.Signing.PublicKey,
        recipient: String? = nil
    ) {
        self.id = id
        self.server = server
        self.machine = machine
        self.askedBy = askedBy
        self.message = message
        self.channel = channel
        self.recipient = recipient
        self.createdAt = Self.timeText(createdAt)
        self.expiresAt = Self.timeText(expiresAt)
        self.password = password
        self.machineKey = DevicePublicKey.text(machineKey)
    }

    enum CodingKeys: String, CodingKey {
        case id, server, machine, message, channel, password, recipient
        case askedBy = "asked_by"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case machineKey = "machine_key"
    }

    /// When it was made.
    public var creation: Date? { Self.time(createdAt) }

    /// When it stops being valid.
    public var expiry: Date? { Self.time(expiresAt) }

    /// Whether it is past its expiry at `now` (an expiry that cannot be read counts as past).
    public func hasExpired(at now: Date) -> Bool {
        guard let expiry else { return true }
        return now >= expiry
    }

    /// What the machine signs: every field (`null` when empty), keys sorted, compact JSON, strings written as the
    /// audit log's canonical encoding writes them, with `"purpose":"ora.invitation.v1"`. The recipient is written only
    /// when there is one, so that invitations of the other channels sign what they always signed.
    public var signedMessage: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"asked_by\":{\"account\":")
        writer.string(askedBy.account)
        writer.raw(",\"display_name\":")
        writer.string(askedBy.displayName)
        writer.raw("},\"channel\":")
        writer.string(channel.rawValue)
        writer.raw(",\"created_at\":")
        writer.string(createdAt)
        writer.raw(",\"expires_at\":")
        writer.string(expiresAt)
        writer.raw(",\"id\":")
        writer.string(id.uuidString.lowercased())
        writer.raw(",\"machine\":")
        writer.string(machine)
        writer.raw(",\"machine_key\":")
        writer.string(machineKey)
        writer.raw(",\"message\":")
        writer.optionalString(message)
        writer.raw(",\"password\":")
        if let password {
            writer.raw("{\"kdf\":")
            writer.string(password.kdf)
            writer.raw(",\"n\":")
            writer.raw(String(password.n))
            writer.raw(",\"p\":")
            writer.raw(String(password.p))
            writer.raw(",\"r\":")
            writer.raw(String(password.r))
            writer.raw(",\"salt\":")
            writer.string(password.salt)
            writer.raw("}")
        } else {
            writer.raw("null")
        }
        writer.raw(",\"purpose\":\"ora.invitation.v1\"")
        if let recipient {
            writer.raw(",\"recipient\":")
            writer.string(recipient)
        }
        writer.raw(",\"server\":")
        writer.string(server)
        writer.raw("}")
        return writer.bytes
    }

    /// `date` as an invitation writes it: `2026-12-06T09:00:00Z`.
    public static func timeText(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
    }

    /// The date an invitation wrote as `text`, if it is one.
    public static func time(_ text: String) -> Date? {
        try? Date(text, strategy: Date.ISO8601FormatStyle(timeZone: .gmt))
    }
}

/// An invitation with the machine's signature: what a `.orainvite` file holds.
public struct SignedInvitation: Sendable, Hashable, Codable {
    /// The format of the file, so that a later version can be told apart.
    public static let format = "ora-invitation/1"
    /// The largest file accepted: an invitation is a few hundred bytes.
    public static let largestFile = 16 * 1024

    /// The invitation.
    public var invitation: Invitation
    /// Base64 of the raw ECDSA signature of `invitation.signedMessage` by the machine's device key.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case format, invitation, signature
    }

    /// Signs `invitation` with the machine's device key.
    public init(_ invitation: Invitation, signingWith key: P256.Signing.PrivateKey) throws {
        self.invitation = invitation
        self.signature = try key.base64Signature(for: invitation.signedMessage)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let format = try container.decode(String.self, forKey: .format)
        guard format == Self.format else {
            throw DecodingError.dataCorruptedError(
                forKey: .format, in: container, debugDescription: "not \(Self.format)")
        }
        invitation = try container.decode(Invitation.self, forKey: .invitation)
        signature = try container.decode(String.self, forKey: .signature)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.format, forKey: .format)
        try container.encode(invitation, forKey: .invitation)
        try container.encode(signature, forKey: .signature)
    }

    /// The file's content: pretty JSON, so that a person can read what it says.
    public var fileContent: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return ((try? encoder.encode(self)) ?? Data()) + Data("\n".utf8)
    }

    /// The invitation in `content`, checked: readable, of this format, and signed by the key it names.
    /// - Throws: `InvitationError.unreadable` or `.notGenuine`.
    public init(fileContent content: Data) throws(InvitationError) {
        guard content.count <= Self.largestFile else { throw .unreadable("the file is larger than an invitation") }
        let decoded: SignedInvitation
        do {
            decoded = try JSONDecoder().decode(SignedInvitation.self, from: content)
        } catch {
            throw .unreadable("it is not an ora invitation (\(Self.format))")
        }
        try decoded.verify()
        self = decoded
    }

    /// The machine's key the invitation names.
    /// - Throws: `InvitationError.notGenuine` when it names no P-256 key.
    public func machineKey() throws(InvitationError) -> P256.Signing.PublicKey {
        do {
            return try DevicePublicKey.parse(invitation.machineKey)
        } catch {
            throw .notGenuine
        }
    }

    /// Checks that the invitation is signed by the key it names. Whether that key is the machine's enrolled key is
    /// for the server to say (`InvitationError.notEnrolledKey`).
    /// - Throws: `InvitationError.notGenuine`.
    public func verify() throws(InvitationError) {
        guard try machineKey().isValid(base64Signature: signature, for: invitation.signedMessage) else {
            throw .notGenuine
        }
    }
}

/// Why an invitation cannot be used.
public enum InvitationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file is not an invitation at all.
    case unreadable(String)
    /// Altered, forged, or signed by another key than the one it names.
    case notGenuine
    /// Signed by a key that is not the machine's enrolled key.
    case notEnrolledKey(machine: String)
    /// No invitation with this id on the machine.
    case unknown
    /// Past its expiry.
    case expired
    /// Revoked by the person at the machine.
    case revoked
    /// Locked after too many wrong passwords.
    case locked
    /// Used already: an invitation opens one session.
    case used
    /// The password proof was wrong; `remaining` tries are left before it locks.
    case wrongPassword(remaining: Int)
    /// A password is needed and none was given.
    case passwordRequired

    /// A stable code for APIs and the audit log.
    public var code: String {
        switch self {
        case .unreadable: "unreadable_invitation"
        case .notGenuine: "not_genuine"
        case .notEnrolledKey: "not_enrolled_key"
        case .unknown: "unknown_invitation"
        case .expired: "invitation_expired"
        case .revoked: "invitation_revoked"
        case .locked: "invitation_locked"
        case .used: "invitation_used"
        case .wrongPassword: "wrong_password"
        case .passwordRequired: "password_required"
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let why): "this is not an invitation: \(why)"
        case .notGenuine: "the invitation is not genuine: it was altered, or not signed by the machine it names"
        case .notEnrolledKey(let machine):
            "the invitation is not genuine: it is not signed by the enrolled key of \(machine.uppercased())"
        case .unknown: "the machine does not know this invitation"
        case .expired: "the invitation has expired"
        case .revoked: "the person at the machine revoked the invitation"
        case .locked: "the invitation is locked after too many wrong passwords"
        case .used: "the invitation was used already"
        case .wrongPassword(let remaining):
            "wrong password; \(remaining) \(remaining == 1 ? "try" : "tries") left before the invitation locks"
        case .passwordRequired: "the invitation is protected by a password"
        }
    }

    /// The error with this `code`, as the machine reported it; `nil` for a code it cannot name.
    public init?(code: String, remaining: Int = 0) {
        switch code {
        case "not_genuine": self = .notGenuine
        case "unknown_invitation": self = .unknown
        case "invitation_expired": self = .expired
        case "invitation_revoked": self = .revoked
        case "invitation_locked": self = .locked
        case "invitation_used": self = .used
        case "wrong_password": self = .wrongPassword(remaining: remaining)
        case "password_required": self = .passwordRequired
        default: return nil
        }
    }
}
