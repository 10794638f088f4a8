import Foundation
import Logging
import ORACore
import ORAStore
import Synchronization

/// Opening a person's invitation, as a helper: the server checks what it can (the file is genuine and signed by the
/// machine's enrolled key, it has not expired by the server's clock, policy allows this helper on that machine, the
/// machine is online), then the machine decides — it alone knows whether the invitation is open and holds the key its
/// password gives. The server relays the machine's challenge and the helper's sealed proof, which it cannot open,
/// and records every step with the machine's signed decision. An invitation the machine lets through becomes an
/// offer like any other: the person at the machine is asked before anyone sees the screen.
final class InvitationDesk: Sendable {
    /// An invitation being opened: the machine asked for the password.
    struct Pending: Sendable {
        var signed: SignedInvitation
        var machine: String
        var operatorDN: String
        var mode: AccessMode
        var ticket: String?
        var reason: String?
        var challenge: InvitationPassword.Challenge
        /// The machine's enrolled key (`DevicePublicKey` text), which signs its decision.
        var machineKey: String
        var until: Date
    }

    /// What the helper gets from opening an invitation.
    struct Opening: Sendable {
        /// The session the invitation opens.
        var session: UUID
        /// The machine, as enrolled.
        var machine: String
        /// The challenge to answer with the password; `nil` when the invitation has none and the offer was made.
        var challenge: InvitationPassword.Challenge?
        /// The offer made, when no password was needed.
        var offered: SessionSnapshot?
    }

    /// What the machine answered.
    enum Reply: Sendable {
        case challenge(InvitationPassword.Challenge)
        case decision(InvitationDecision)
    }

    /// How long the machine has to answer, and the helper to prove the password once asked.
    static let machineTimeout: Duration = .seconds(10)
    static let proofTimeout: TimeInterval = 300

    private let intake: OfferIntake
    private let links: AgentLinks
    private let audit: SessionAudit
    private let clock: ServerClock
    private let logger: Logger
    /// The helpdesk's queue, which an invitation the machine revoked or that expired leaves.
    private let queue: InvitationQueue?
    private let pending = Mutex<[UUID: Pending]>([:])
    private let waiting = Mutex<[UUID: (machine: String, continuation: CheckedContinuation<Reply?, Never>)]>([:])

    init(
        intake: OfferIntake, links: AgentLinks, audit: SessionAudit, clock: ServerClock, logger: Logger,
        queue: InvitationQueue? = nil
    ) {
        self.queue = queue
        self.intake = intake
        self.links = links
        self.audit = audit
        self.clock = clock
        self.logger = logger
    }

    // MARK: For the helper

    /// Opens `signed` as `identity`, for a session of `mode`.
    /// - Returns: the session, and the machine's challenge when the invitation has a password (else the offer made).
    /// - Throws: `SessionError.invitation` (not genuine, not the enrolled key, expired, or the machine's refusal),
    ///   `.deniedByPolicy`, `.machineOffline`, `.machineDidNotAnswer`, `.auditUnavailable`, and what an offer throws.
    func open(
        _ signed: SignedInvitation, mode: AccessMode, ticket: String?, reason: String?,
        by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> Opening {
        let invitation = signed.invitation
        let actor = AuditActor.operator(dn: identity.person.dn, account: identity.person.account)
        var details: [String: AuditValue] = [
            "invitation": .string(invitation.id.uuidString.lowercased()),
            "channel": .string(invitation.channel.rawValue),
            "asked_by": .string(invitation.askedBy.account), "expires_at": .string(invitation.expiresAt),
            "mode": .string(mode.rawValue), "password": .bool(invitation.password != nil),
        ]
        /// Records the refusal as `invitation.opened` that failed (or was denied by policy), then refuses.
        func refuse(
            _ error: SessionError, outcome: AuditOutcome = .failure, decision: InvitationDecision? = nil,
            policy: AuditEvent.PolicyReference? = nil
        ) async throws(SessionError) -> Never {
            var recorded = details
            recorded["refused"] = .string(error.code)
            recorded["explanation"] = .string(error.message)
            if let decision { recorded["decision"] = decision.auditValue }
            try await audit.record(
                AuditEvent(
                    .invitationOpened, time: clock.timestamp, actor: actor, machine: invitation.machine.lowercased(),
                    source: source, policy: policy ?? .init(version: nil), outcome: outcome, details: recorded))
            throw error
        }
        let (machine, decision): (MachineStore.Machine, Decision)
        do throws(SessionError) {
            (machine, decision) = try await intake.decision(
                by: identity, on: invitation.machine, mode: mode, ticket: ticket, invitation: invitation)
        } catch {
            try await refuse(error)
        }
        let policy = AuditEvent.PolicyReference(
            version: intake.policies.active.activation?.version, names: decision.policies)
        // The server's own checks first: genuine, the enrolled key, not expired.
        guard machine.publicKey == invitation.machineKey else {
            try await refuse(.invitation(.notEnrolledKey(machine: machine.name)), policy: policy)
        }
        guard !invitation.hasExpired(at: clock.now()) else { try await refuse(.invitation(.expired), policy: policy) }
        guard let allowed = decision.allowed, allowed >= mode else {
            try await refuse(.deniedByPolicy(explanation: decision.explanation), outcome: .denied, policy: policy)
        }
        guard links.isOnline(machine.name) else { try await refuse(.machineOffline(machine.name), policy: policy) }

        // Then the machine decides.
        let session = UUID()
        let reply = try await ask(
            machine.name,
            .openInvitation(invitation: invitation.id, session: session, operatorDN: identity.person.dn),
            session: session)
        switch reply {
        case .challenge(let challenge):
            guard challenge.invitation == invitation.id, challenge.session == session,
                challenge.operatorDN == identity.person.dn
            else { try await refuse(.invitation(.notGenuine), policy: policy) }
            details["machine_answer"] = .string("password_required")
            try await audit.record(
                AuditEvent(
                    .invitationOpened, time: clock.timestamp, actor: actor, machine: machine.name, session: session,
                    source: source, policy: policy, outcome: .success, details: details))
            let now = clock.now()
            pending.withLock { pending in
                // Challenges nobody answered in time are forgotten here, so that they do not pile up.
                pending = pending.filter { $0.value.until > now }
                pending[session] = Pending(
                    signed: signed, machine: machine.name, operatorDN: identity.person.dn, mode: mode, ticket: ticket,
                    reason: reason, challenge: challenge, machineKey: machine.publicKey,
                    until: now + Self.proofTimeout)
            }
            return Opening(session: session, machine: machine.name, challenge: challenge, offered: nil)
        case .decision(let verdict):
            guard Self.signed(verdict, by: machine.publicKey), verdict.session == session,
                verdict.invitation == invitation.id
            else { try await refuse(.invitation(.notGenuine), policy: policy) }
            guard verdict.outcome == .accepted else {
                try await refuse(.invitation(verdict.error ?? .unknown), decision: verdict, policy: policy)
            }
            details["machine_answer"] = .string("accepted")
            details["decision"] = verdict.auditValue
            try await audit.record(
                AuditEvent(
                    .invitationTaken, time: clock.timestamp, actor: actor, machine: machine.name, session: session,
                    source: source, policy: policy, outcome: .success, details: details))
            let offered = try await intake.offer(
                by: identity, to: machine.name, mode: mode, ticket: ticket, reason: reason, source: source,
                session: session, invitation: invitation)
            return Opening(session: session, machine: machine.name, challenge: nil, offered: offered)
        }
    }

    /// The helper's sealed answer to the machine's challenge for `session`: relayed to the machine, which decides.
    /// - Returns: the offer made once the machine accepted the password.
    /// - Throws: `SessionError.noInvitationPending`, `.invitation(.wrongPassword)` or `.invitation(.locked)` (and
    ///   the machine's other refusals), `.machineDidNotAnswer`, `.auditUnavailable`, and what an offer throws.
    func prove(
        _ proof: InvitationPassword.SealedProof, session: UUID, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> SessionSnapshot {
        let now = clock.now()
        let taken = pending.withLock { pending -> Pending? in
            guard let entry = pending[session], entry.operatorDN == identity.person.dn else { return nil }
            pending[session] = nil
            return entry
        }
        guard let entry = taken, entry.until > now else { throw .noInvitationPending(session) }
        let invitation = entry.signed.invitation
        let actor = AuditActor.operator(dn: identity.person.dn, account: identity.person.account)
        let reply = try await ask(
            entry.machine, .invitationProof(challenge: entry.challenge, proof: proof), session: session)
        guard case .decision(let verdict) = reply, verdict.session == session,
            verdict.invitation == invitation.id, Self.signed(verdict, by: entry.machineKey)
        else { throw .invitation(.notGenuine) }
        var details: [String: AuditValue] = [
            "invitation": .string(invitation.id.uuidString.lowercased()),
            "channel": .string(invitation.channel.rawValue),
            "failures": .integer(Int64(verdict.failures)), "decision": verdict.auditValue,
        ]
        let type: AuditEventType =
            switch (verdict.outcome, verdict.error) {
            case (.accepted, _): .invitationTaken
            case (.locked, _): .invitationLocked
            case (.refused, .wrongPassword): .invitationPasswordFailed
            case (.refused, _): .invitationOpened
            }
        if let reason = verdict.reason { details["refused"] = .string(reason) }
        try await audit.record(
            AuditEvent(
                type, time: clock.timestamp, actor: actor, machine: entry.machine, session: session, source: source,
                policy: .init(version: nil), outcome: verdict.outcome == .accepted ? .success : .failure,
                details: details))
        guard verdict.outcome == .accepted else { throw .invitation(verdict.error ?? .unknown) }
        return try await intake.offer(
            by: identity, to: entry.machine, mode: entry.mode, ticket: entry.ticket, reason: entry.reason,
            source: source, session: session, invitation: invitation)
    }

    // MARK: From the machine

    /// Records what the machine reports of its invitation (`created`, `revoked`, `expired`) and acknowledges it; a
    /// report of another machine's invitation, one not signed by this machine's key, or that cannot be recorded now
    /// is not acknowledged (the agent sends it again on its next connection).
    func record(_ signed: SignedInvitation, status: String, from machine: String, source: String) async {
        let invitation = signed.invitation
        let type: AuditEventType? =
            switch status {
            case "created": .invitationCreated
            case "revoked": .invitationRevoked
            case "expired": .invitationExpired
            default: nil
            }
        guard let type, invitation.machine.lowercased() == machine, (try? signed.verify()) != nil,
            let enrolled = try? await intake.enrolledMachine(named: machine),
            enrolled.publicKey == invitation.machineKey
        else {
            logger.warning(
                "ignored a report of an invitation that is not this machine's",
                metadata: ["machine": "\(machine)", "invitation.id": "\(invitation.id)"])
            return
        }
        var details: [String: AuditValue] = [
            "invitation": .string(invitation.id.uuidString.lowercased()),
            "channel": .string(invitation.channel.rawValue),
            "asked_by": .string(invitation.askedBy.account), "created_at": .string(invitation.createdAt),
            "expires_at": .string(invitation.expiresAt), "password": .bool(invitation.password != nil),
        ]
        if type == .invitationCreated { details["message"] = .text(invitation.message) }
        do throws(SessionError) {
            try await audit.record(
                AuditEvent(
                    type, time: clock.timestamp, actor: .machine(machine), machine: machine, source: source,
                    outcome: .success, details: details))
        } catch {
            return
        }
        if let queue, invitation.channel == .helpdesk, type != .invitationCreated {
            await queue.withdraw(invitation.id, reason: status)
        }
        _ = await links.send(.invitationRecorded(invitation: invitation.id, status: status), to: machine)
    }

    /// The machine's answer about `session`'s invitation; anything not awaited, or from another machine, is dropped.
    func machineReplied(_ reply: Reply, session: UUID, from machine: String) {
        guard waiting.withLock({ $0[session]?.machine == machine }) else { return }
        finish(session, with: reply)
    }

    /// Sends `message` to `machine` and waits for its answer about `session`, at most `machineTimeout`.
    private func ask(
        _ machine: String, _ message: AgentProtocol.ServerMessage, session: UUID
    ) async throws(SessionError) -> Reply {
        let reply: Reply? = await withCheckedContinuation { continuation in
            waiting.withLock { $0[session] = (machine, continuation) }
            Task {
                let sent = await links.send(message, to: machine)
                if !sent { finish(session, with: nil) }
                try? await Task.sleep(for: Self.machineTimeout)
                finish(session, with: nil)
            }
        }
        guard let reply else { throw .machineDidNotAnswer(machine.uppercased()) }
        return reply
    }

    /// Ends the wait for `session` with `reply`, if it is still waiting.
    private func finish(_ session: UUID, with reply: Reply?) {
        let waiter = waiting.withLock { $0.removeValue(forKey: session) }
        waiter?.continuation.resume(returning: reply)
    }

    /// Whether the machine whose enrolled key is `key` (`DevicePublicKey` text) signed `decision`.
    static func signed(_ decision: InvitationDecision, by key: String) -> Bool {
        guard let parsed = try? DevicePublicKey.parse(key) else { return false }
        return decision.isSigned(by: parsed)
    }
}
