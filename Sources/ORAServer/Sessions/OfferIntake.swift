import Foundation
import Logging
import ORACore
import ORADirectory
import ORAStore

/// Taking an offer: the checks of what the helper typed, the machine's enrollment and directory entry, the active
/// policy's decision, the one-session-per-machine reservation and the rate limit, each refusal recorded as
/// `offer.denied`, and `offer.requested` recorded before anything reaches the agent; then the broker opens the
/// session and sends the offer.
struct OfferIntake: Sendable {
    let machines: MachineStore
    let directory: DirectoryClient
    let policies: PolicyService
    let table: SessionTable
    let links: AgentLinks
    let broker: SessionBroker
    let audit: SessionAudit
    let clock: ServerClock
    let logger: Logger

    /// Offers assistance to `machineName` as `identity`: decides with the active policy and the directory's facts
    /// now, records `offer.requested` (or `offer.denied`) first, then sends the offer to the agent.
    /// - Returns: the new session.
    /// - Throws: `SessionError`: `.deniedByPolicy` with the explanation, `.machine` for a machine that is not
    ///   enrolled, `.machineOffline` or `.machineBusy`, `.tooManyOffers` when it was offered help too often,
    ///   `.directory` or `.auditUnavailable` when they cannot answer.
    func offer(
        by identity: OperatorService.Identity,
        to machineName: String,
        mode: AccessMode,
        ticket: String?,
        reason: String?,
        source: String,
        session: UUID = UUID(),
        invitation: Invitation? = nil
    ) async throws(SessionError) -> SessionSnapshot {
        let now = clock.now()
        // What the person at the machine is shown must read as it is: no control characters, and none that reorder
        // or hide the text around them.
        if let reason,
            !AuditText.isBounded(reason, to: AgentProtocol.maximumReportedTextLength)
                || !AgentProtocol.isReportable(reason) || AuditText.hasInvisibleFormatting(reason)
        {
            throw .invalidRequest(
                "the reason must be 1 to \(AgentProtocol.maximumReportedTextLength) characters on one line, without "
                    + "invisible formatting characters "
                    + "(bidirectional overrides, zero-width characters)"
            )
        }
        if let ticket,
            ticket.count > 100 || !AgentProtocol.isReportable(ticket) || AuditText.hasInvisibleFormatting(ticket)
        {
            throw .invalidRequest(
                "the ticket must be 1 to 100 characters on one line, without invisible formatting characters")
        }
        let enrolled = try await offeredMachine(named: machineName)
        let actor = AuditActor.operator(dn: identity.person.dn, account: identity.person.account)
        let computer: Computer
        do throws(SessionError) {
            computer = try await self.computer(named: enrolled.name)
        } catch {
            // Refused without a decision (the directory could not say what the machine is): recorded all the same.
            try await audit.record(
                AuditEvent(
                    .offerDenied, time: clock.timestamp, actor: actor, machine: enrolled.name, source: source,
                    policy: .init(version: policies.active.activation?.version), outcome: .failure,
                    details: [
                        "mode": .string(mode.rawValue), "ticket": .text(ticket), "reason": .text(reason),
                        "refused": .string(error.code), "explanation": .string(error.message),
                    ]))
            throw error
        }
        let groups = Set(identity.groups)
        let active = policies.active
        let version = active.activation?.version
        let decision = active.set.decide(
            operatorGroups: groups, machine: MachineFacts(computer), mode: mode, ticket: ticket, at: now,
            invitation: invitation.map(PolicySet.InvitationTerms.init))
        var details: [String: AuditValue] = [
            "mode": .string(mode.rawValue), "ticket": .text(ticket), "reason": .text(reason),
            "explanation": .string(decision.explanation),
        ]
        if let invitation { details["invitation"] = .string(invitation.id.uuidString.lowercased()) }
        /// Records the refusal as `offer.denied` (by policy: `denied`; otherwise `failure`, saying why), then
        /// refuses.
        func refuse(_ error: SessionError, outcome: AuditOutcome) async throws(SessionError) -> Never {
            var recorded = details
            if outcome == .failure { recorded["refused"] = .string(error.code) }
            try await audit.record(
                AuditEvent(
                    .offerDenied, time: clock.timestamp, actor: actor, machine: enrolled.name, source: source,
                    policy: .init(version: version, names: decision.policies), outcome: outcome, details: recorded))
            throw error
        }
        guard let allowed = decision.allowed, allowed >= mode, let consentTimeout = decision.consentTimeout,
            let maximumDuration = decision.maximumDuration
        else {
            try await refuse(.deniedByPolicy(explanation: decision.explanation), outcome: .denied)
        }
        let refusal = table.reserve(enrolled.name, at: now)
        // Until the session is in place (or the offer failed), no other offer to this machine may start.
        var holdsReservation = refusal == nil
        defer {
            if holdsReservation { table.release(enrolled.name) }
        }
        if let refusal { try await refuse(refusal, outcome: .failure) }
        guard links.isOnline(enrolled.name) else {
            try await refuse(.machineOffline(enrolled.name), outcome: .failure)
        }
        let offer = Offer(
            session: session, machine: enrolled.name,
            helper: .init(identity.person),
            mode: mode, ticket: ticket, reason: reason, policyVersion: version ?? 0, policies: decision.policies,
            consentTimeoutSeconds: consentTimeout.components.seconds, issuedAt: AuditTimestamp(now),
            invitation: invitation?.id)
        details["offer_hash"] = .string(offer.hash)
        details["consent_timeout_seconds"] = .integer(consentTimeout.components.seconds)
        details["max_duration_seconds"] = .integer(maximumDuration.components.seconds)
        try await audit.record(
            AuditEvent(
                .offerRequested, time: clock.timestamp, actor: actor, machine: enrolled.name, session: session,
                source: source,
                policy: .init(version: version, names: decision.policies), outcome: .success, details: details))
        let live = SessionTable.Live(
            offer: offer, machineKey: enrolled.publicKey,
            machine: SessionStateMachine(
                mode: mode, offeredAt: AuditTimestamp(now), consentTimeout: consentTimeout,
                maximumDuration: maximumDuration))
        holdsReservation = false
        return await broker.open(live, id: session)
    }

    /// The enrolled machine `machineName` and what the active policy decides for `identity` there now, without
    /// offering anything or recording: an invitation is checked so before its machine is asked for a password
    /// (with the rules of policy for answering `invitation`).
    /// - Throws: `SessionError.machine`, `.machineRevoked`, `.notInDirectory` or `.directory`.
    func decision(
        by identity: OperatorService.Identity, on machineName: String, mode: AccessMode, ticket: String?,
        invitation: Invitation? = nil
    ) async throws(SessionError) -> (machine: MachineStore.Machine, decision: Decision) {
        let (enrolled, facts) = try await facts(of: machineName)
        let decision = policies.active.set.decide(
            operatorGroups: Set(identity.groups), machine: facts, mode: mode, ticket: ticket, at: clock.now(),
            invitation: invitation.map(PolicySet.InvitationTerms.init))
        return (enrolled, decision)
    }

    /// The enrolled machine `machineName` and what the directory says of it now, which policy decides on.
    /// - Throws: `SessionError.machine`, `.machineRevoked`, `.notInDirectory` or `.directory`.
    func facts(of machineName: String) async throws(SessionError) -> (machine: MachineStore.Machine, MachineFacts) {
        let enrolled = try await enrolledMachine(named: machineName)
        return (enrolled, MachineFacts(try await computer(named: enrolled.name)))
    }

    /// The machine an offer goes to, by its enrolled name and device key. While its agent is connected here, they
    /// are the ones that agent proved when it connected, without asking the database: a revocation or a re-key
    /// closes that connection, and the person's answer counts only if the machine is still enrolled with that key
    /// when it comes (`AgentMessages`). Otherwise they are read from the database, so that an unknown or revoked
    /// machine is refused as such.
    /// - Throws: `SessionError.machine` (unknown, or the database) or `.machineRevoked`.
    private func offeredMachine(named name: String) async throws(SessionError) -> (name: String, publicKey: String) {
        let canonical = name.lowercased()
        if let publicKey = links.publicKey(of: canonical) { return (canonical, publicKey) }
        let enrolled = try await enrolledMachine(named: name)
        return (enrolled.name, enrolled.publicKey)
    }

    /// The enrolled machine `name`, not revoked.
    /// - Throws: `SessionError.machine` (unknown, or the database) or `.machineRevoked`.
    func enrolledMachine(named name: String) async throws(SessionError) -> MachineStore.Machine {
        let enrolled: MachineStore.Machine
        do {
            enrolled = try await AgentService.machine(named: name, in: machines, logger: logger)
        } catch {
            throw .machine(error)
        }
        guard enrolled.revokedAt == nil else { throw .machineRevoked(enrolled.name) }
        return enrolled
    }

    /// The directory's computer object of the enrolled machine `name`, now.
    /// - Throws: `SessionError.directory`, or `.notInDirectory` when there is none.
    private func computer(named name: String) async throws(SessionError) -> Computer {
        let found: Computer?
        do {
            found = try await directory.computer(named: name)
        } catch {
            throw .directory(error)
        }
        guard let found else { throw .notInDirectory(name) }
        return found
    }
}
