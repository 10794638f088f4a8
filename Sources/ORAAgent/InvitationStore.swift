public import Crypto
public import Foundation
public import ORACore

#if canImport(Glibc)
import Glibc
#endif

/// The machine's invitations, in its state directory (`invitations.json`, mode 0600): each signed invitation, the
/// key its password gives (never the password), and what became of it. This file, not the server, decides whether an
/// invitation may be used: `ora-agent invite` writes it, `ora-agent invitations revoke` changes it at once — also
/// while the server cannot be reached — and the running agent reads it at every use and reports changes to the server
/// when it is connected. Every change holds an exclusive lock on `invitations.lock`, so the commands and the agent
/// never overwrite each other.
public struct InvitationStore: Sendable {
    /// One invitation and what became of it.
    public struct Record: Sendable, Hashable, Codable {
        /// The invitation as signed.
        public var signed: SignedInvitation
        /// Base64 of the key the password gives; `nil` for an invitation without a password.
        public var key: String?
        /// Wrong passwords so far.
        public var failures = 0
        /// Who last tried to open it (operator DN), and when.
        public var openedBy: String?
        public var openedAt: String?
        /// Who opened a session with it, and when: an invitation is used once.
        public var usedBy: String?
        public var usedAt: String?
        /// When the person revoked it.
        public var revokedAt: String?
        /// When it locked after too many wrong passwords.
        public var lockedAt: String?
        /// The status the server was last told, so that a change made while it was unreachable is told later.
        public var reported: String?

        enum CodingKeys: String, CodingKey {
            case signed, key, failures, reported
            case openedBy = "opened_by"
            case openedAt = "opened_at"
            case usedBy = "used_by"
            case usedAt = "used_at"
            case revokedAt = "revoked_at"
            case lockedAt = "locked_at"
        }

        /// The invitation.
        public var invitation: Invitation { signed.invitation }

        /// What it is now, by the machine's clock.
        public func status(at now: Date) -> Status {
            if revokedAt != nil { return .revoked }
            if lockedAt != nil { return .locked }
            if usedAt != nil { return .used }
            if invitation.hasExpired(at: now) { return .expired }
            return openedBy == nil ? .open : .opened
        }
    }

    /// What became of an invitation.
    public enum Status: String, Sendable, Hashable, Codable {
        /// Nobody opened it yet.
        case open
        /// Someone tried to open it and has not got in yet.
        case opened
        /// A session was opened with it.
        case used
        /// Past its expiry.
        case expired
        /// Revoked by the person.
        case revoked
        /// Locked after too many wrong passwords.
        case locked
    }

    /// The state directory.
    public let state: AgentState

    /// The store in `state`'s directory.
    public init(state: AgentState) {
        self.state = state
    }

    var file: URL { state.directory.appendingPathComponent("invitations.json") }
    var lockFile: URL { state.directory.appendingPathComponent("invitations.lock") }

    /// Makes an invitation of this machine, signed with its device key, and keeps it: protected by `password`
    /// (whose scrypt key only is kept) or, when `nil`, by none. An invitation sent by e-mail names its `recipient`.
    /// - Throws: `AgentError.notEnrolled` or `.state`, `.invalidArgument` for a password outside the bounds.
    public func make(
        message: String?, lifetime: Duration, password: String?, askedBy: Invitation.Person, at now: Date,
        channel: Invitation.Channel = .file, recipient: MailAddress? = nil
    ) throws(AgentError) -> SignedInvitation {
        let (key, enrollment) = try state.load()
        var passwordKey: SymmetricKey?
        var parameters: InvitationPassword.Parameters?
        if let password {
            let fresh = InvitationPassword.Parameters.fresh()
            do throws(InvitationPasswordError) {
                passwordKey = try InvitationPassword.key(for: password, with: fresh)
            } catch {
                throw .invalidArgument(error.description)
            }
            parameters = fresh
        }
        let invitation = Invitation(
            server: enrollment.server, machine: enrollment.machine, askedBy: askedBy, message: message,
            channel: channel,
            createdAt: now, expiresAt: now + Double(lifetime.components.seconds), password: parameters,
            machineKey: key.publicKey, recipient: recipient?.description)
        let signed: SignedInvitation
        do {
            signed = try SignedInvitation(invitation, signingWith: key)
        } catch {
            throw .state("cannot sign the invitation with the device key")
        }
        try add(signed, key: passwordKey)
        return signed
    }

    /// Every invitation, newest first.
    public func records() throws(AgentError) -> [Record] {
        try update { $0 }.sorted { $0.invitation.createdAt > $1.invitation.createdAt }
    }

    /// Keeps a new invitation.
    public func add(_ signed: SignedInvitation, key: SymmetricKey?) throws(AgentError) {
        try update { records in
            records.append(
                Record(signed: signed, key: key.map { $0.withUnsafeBytes { Data($0) }.base64EncodedString() }))
        }
    }

    /// The invitation whose id is `id` or starts with `id` (at least 4 characters, as `ora` abbreviates).
    /// - Throws: `AgentError.invalidArgument` for none or several.
    public func find(_ id: String) throws(AgentError) -> Record {
        let matches = try records().filter { Self.matches($0.invitation.id, id) }
        guard matches.count == 1 else {
            throw .invalidArgument(
                matches.isEmpty ? "no invitation \(id) on this machine" : "\(id) names several invitations")
        }
        return matches[0]
    }

    /// Revokes the invitation `id` at once.
    /// - Returns: the record as it is now.
    /// - Throws: `AgentError.invalidArgument` for an unknown id, or one that cannot be revoked any more (used,
    ///   revoked or locked).
    public func revoke(_ id: String, at now: Date) throws(AgentError) -> Record {
        let found = try find(id)
        return try update { records throws(AgentError) -> Record in
            guard let index = records.firstIndex(where: { $0.invitation.id == found.invitation.id }) else {
                throw .invalidArgument("no invitation \(id) on this machine")
            }
            let status = records[index].status(at: now)
            guard [.open, .opened, .expired].contains(status) else {
                throw .invalidArgument("invitation \(Self.short(found.invitation.id)) is \(status.rawValue) already")
            }
            records[index].revokedAt = Invitation.timeText(now)
            return records[index]
        }
    }

    /// Starts a use of invitation `id` by `operatorDN` for `session`: refused unless the machine knows it and it is
    /// open, and noted as opened.
    /// - Returns: the challenge the helper's tool must answer, or `nil` when the invitation has no password (then it
    ///   is used at once).
    /// - Throws: `InvitationError` saying why it cannot be used.
    public func begin(
        _ id: UUID, session: UUID, by operatorDN: String, at now: Date
    ) throws(InvitationError) -> InvitationPassword.Challenge? {
        let outcome: Result<InvitationPassword.Challenge?, InvitationError>
        do {
            outcome = try update { records in
                guard let index = records.firstIndex(where: { $0.invitation.id == id }) else {
                    return .failure(.unknown)
                }
                if let refusal = Self.refusal(records[index].status(at: now)) { return .failure(refusal) }
                records[index].openedBy = operatorDN
                records[index].openedAt = Invitation.timeText(now)
                guard records[index].key != nil else {
                    records[index].usedBy = operatorDN
                    records[index].usedAt = Invitation.timeText(now)
                    return .success(nil)
                }
                return .success(InvitationPassword.Challenge(invitation: id, session: session, operatorDN: operatorDN))
            }
        } catch {
            // A store the agent cannot read lets nothing through.
            throw .unknown
        }
        return try outcome.get()
    }

    /// Checks the helper's answer to `challenge`: a right proof uses the invitation; a wrong one counts, and the
    /// `InvitationDecision.allowedFailures`-th locks it.
    /// - Returns: the machine's verdict and the wrong passwords so far.
    public func answer(
        _ challenge: InvitationPassword.Challenge, with sealed: InvitationPassword.SealedProof,
        deviceKey: P256.Signing.PrivateKey, at now: Date
    ) -> (outcome: InvitationDecision.Outcome, reason: InvitationError?, failures: Int) {
        let result = try? update { records -> (InvitationDecision.Outcome, InvitationError?, Int) in
            guard let index = records.firstIndex(where: { $0.invitation.id == challenge.invitation }) else {
                return (.refused, .unknown, 0)
            }
            if let refusal = Self.refusal(records[index].status(at: now)) {
                return (.refused, refusal, records[index].failures)
            }
            guard let keyText = records[index].key, let keyBytes = Data(base64Encoded: keyText) else {
                return (.refused, .unknown, records[index].failures)
            }
            let key = SymmetricKey(data: keyBytes)
            if let proof = sealed.open(with: deviceKey, for: challenge),
                InvitationPassword.isValid(proof, with: key, for: challenge)
            {
                records[index].usedBy = challenge.operatorDN
                records[index].usedAt = Invitation.timeText(now)
                return (.accepted, nil, records[index].failures)
            }
            records[index].failures += 1
            let failures = records[index].failures
            guard failures < InvitationDecision.allowedFailures else {
                records[index].lockedAt = Invitation.timeText(now)
                return (.locked, .locked, failures)
            }
            return (.refused, .wrongPassword(remaining: InvitationDecision.allowedFailures - failures), failures)
        }
        return result ?? (.refused, .unknown, 0)
    }

    /// What the server has not been told yet, one step per invitation, in order: that it was `created`, then that it
    /// was `revoked` or `expired` (its uses the server records itself).
    public func unreported(at now: Date) throws(AgentError) -> [(SignedInvitation, String)] {
        try records().reversed().compactMap { record in
            guard let next = Self.nextReport(record, at: now) else { return nil }
            return (record.signed, next)
        }
    }

    /// The next status to report of `record`, if any.
    static func nextReport(_ record: Record, at now: Date) -> String? {
        if record.reported == nil { return "created" }
        let final: String? =
            switch record.status(at: now) {
            case .revoked: "revoked"
            case .expired: "expired"
            default: nil
            }
        guard let final, record.reported != final else { return nil }
        return final
    }

    /// Notes that the server recorded `status` of `id`.
    public func noteReported(_ id: UUID, status: String) throws(AgentError) {
        try update { records in
            if let index = records.firstIndex(where: { $0.invitation.id == id }) {
                records[index].reported = status
            }
        }
    }

    /// Why an invitation in `status` cannot be used; `nil` when it can.
    static func refusal(_ status: Status) -> InvitationError? {
        switch status {
        case .open, .opened: nil
        case .used: .used
        case .expired: .expired
        case .revoked: .revoked
        case .locked: .locked
        }
    }

    /// Whether `id` is `text`, or starts with it (at least 4 characters), ignoring case and hyphens.
    static func matches(_ id: UUID, _ text: String) -> Bool {
        let wanted = text.lowercased().replacingOccurrences(of: "-", with: "")
        let full = id.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        return wanted.count >= 4 && full.hasPrefix(wanted)
    }

    /// The first 8 hex digits of `id`, as lists show it.
    public static func short(_ id: UUID) -> String {
        String(id.uuidString.lowercased().prefix(8))
    }

    /// Runs `body` on the records under the exclusive lock, and writes them back when it changed them.
    @discardableResult
    func update<T>(_ body: (inout [Record]) throws(AgentError) -> T) throws(AgentError) -> T {
        let descriptor = open(lockFile.path, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw .state("cannot open \(lockFile.path)") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw .state("cannot lock \(lockFile.path)") }
        defer { flock(descriptor, LOCK_UN) }
        var records: [Record] = []
        if let data = try? Data(contentsOf: file) {
            guard let decoded = try? JSONDecoder().decode([Record].self, from: data) else {
                throw .state("\(file.path) is not a list of invitations")
            }
            records = decoded
        }
        let before = records
        let result = try body(&records)
        if records != before {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try state.writePrivately((try? encoder.encode(records)) ?? Data(), to: file)
        }
        return result
    }
}
