public import Foundation
import Logging
public import ORACore
import ORADirectory
import ORAStore
public import ServiceLifecycle
import Synchronization

/// Offers and the sessions they start, on the server that holds the machine's agent connection: it decides each
/// offer with the active policy, records it before anything reaches the agent, follows every session through
/// `SessionStateMachine`, checks each consent the agent signs, and ends sessions when their deadline passes, their
/// agent disconnects, or the policy no longer allows them.
///
/// A transition that gives access (or asks for it) is recorded in the audit log before its effect (a message to the
/// agent, an answer to the helper); when the record cannot be written, the transition is undone and the action
/// refused. A transition that takes access away — the session ends, control is stopped or refused — never waits for
/// the log: it takes effect at once (screen tickets revoked, viewers closed, the agent told) and its events go to the
/// `AuditJournal`, which stores them as soon as it can, in order, and keeps them across a restart.
public final class SessionBroker: Service, Sendable {
    /// One live session.
    struct Live: Sendable {
        var offer: Offer
        var machineKey: String
        var machine: SessionStateMachine
        /// Counts the changes, so copies written elsewhere can tell which is newer.
        var revision = 0
    }

    private struct State: Sendable {
        var sessions: [UUID: Live] = [:]
        /// Ended sessions, kept a while so helpers can read how they ended.
        var ended: [UUID: (live: Live, at: Date)] = [:]
        var watchers: [UUID: [UUID: AsyncStream<SessionSnapshot>.Continuation]] = [:]
        var offers: OfferRateLimiter
        /// Machines with an offer being recorded: one session per machine, even for offers made at once.
        var reserved: Set<String> = []
    }

    private let gateway: AgentGateway
    private let policies: PolicyService
    private let agents: AgentService
    private let directory: DirectoryClient
    private let audit: AuditWriter
    private let journal: AuditJournal
    private let settings: AgentSettings
    private let screens: ScreenRelay
    private let clock: ServerClock
    private let logger: Logger
    private let state: Mutex<State>
    /// Ends the deadline loop's sleep when a session or the policy changed.
    private let wakeup = Wakeup()
    /// Told of every change of every session, with its revision.
    private let changes = Mutex<(@Sendable (SessionSnapshot, Int) async -> Void)?>(nil)

    /// Creates the broker.
    init(
        gateway: AgentGateway,
        policies: PolicyService,
        agents: AgentService,
        directory: DirectoryClient,
        audit: AuditWriter,
        journal: AuditJournal,
        settings: AgentSettings,
        screens: ScreenRelay,
        clock: ServerClock,
        logger: Logger
    ) {
        self.gateway = gateway
        self.policies = policies
        self.agents = agents
        self.directory = directory
        self.audit = audit
        self.journal = journal
        self.settings = settings
        self.screens = screens
        self.clock = clock
        self.logger = logger
        state = Mutex(State(offers: OfferRateLimiter(offersPerWindow: settings.offersPerMachinePerMinute)))
    }

    /// Tells `handler` the state of every session at its start and after every change.
    func publishChanges(to handler: @escaping @Sendable (SessionSnapshot, Int) async -> Void) {
        changes.withLock { $0 = handler }
    }

    /// Whether the session runs here, or ended here lately.
    func runsHere(_ id: UUID) -> Bool {
        state.withLock { $0.sessions[id] != nil || $0.ended[id] != nil }
    }

    /// The offer and state of the live session `id`, if it runs here.
    func live(_ id: UUID) -> (offer: Offer, state: SessionStateMachine.State)? {
        state.withLock { state in state.sessions[id].map { ($0.offer, $0.machine.state) } }
    }

    // MARK: Offers

    /// Offers assistance to `machineName` as `identity`: decides with the active policy and the directory's facts
    /// now, records `offer.requested` (or `offer.denied`) first, then sends the offer to the agent.
    /// - Returns: the new session.
    /// - Throws: `SessionError`: `.deniedByPolicy` with the explanation, `.machine` for a machine that is not
    ///   enrolled, `.machineOffline` or `.machineBusy`, `.tooManyOffers` when it was offered help too often,
    ///   `.directory` or `.auditUnavailable` when they cannot answer.
    public func offer(
        by identity: OperatorService.Identity,
        to machineName: String,
        mode: AccessMode,
        ticket: String?,
        reason: String?,
        source: String
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
        let enrolled: MachineStore.Machine
        do {
            enrolled = try await agents.machine(named: machineName)
        } catch {
            throw .machine(error)
        }
        guard enrolled.revokedAt == nil else { throw .machineRevoked(enrolled.name) }
        let actor = AuditActor.operator(dn: identity.person.dn, account: identity.person.account)
        let computer: Computer
        do throws(SessionError) {
            let found: Computer?
            do {
                found = try await directory.computer(named: enrolled.name)
            } catch {
                throw .directory(error)
            }
            guard let found else { throw .notInDirectory(enrolled.name) }
            computer = found
        } catch {
            // Refused without a decision (the directory could not say what the machine is): recorded all the same.
            try await record(
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
            operatorGroups: groups, machine: MachineFacts(computer), mode: mode, ticket: ticket, at: now)
        var details: [String: AuditValue] = [
            "mode": .string(mode.rawValue), "ticket": .text(ticket), "reason": .text(reason),
            "explanation": .string(decision.explanation),
        ]
        /// Records the refusal as `offer.denied` (by policy: `denied`; otherwise `failure`, saying why), then
        /// refuses.
        func refuse(_ error: SessionError, outcome: AuditOutcome) async throws(SessionError) -> Never {
            var recorded = details
            if outcome == .failure { recorded["refused"] = .string(error.code) }
            try await record(
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
        let session = UUID()
        let refusal: SessionError? = state.withLock { state in
            if state.reserved.contains(enrolled.name)
                || state.sessions.values.contains(where: { $0.offer.machine == enrolled.name })
            {
                return .machineBusy(enrolled.name)
            }
            if case .limited(let recent, let retryAfter) = state.offers.admit(enrolled.name, at: now) {
                return .tooManyOffers(machine: enrolled.name, recent: recent, retryAfter: retryAfter)
            }
            state.reserved.insert(enrolled.name)
            return nil
        }
        // Until the session is in place (or the offer failed), no other offer to this machine may start.
        var holdsReservation = refusal == nil
        defer {
            if holdsReservation { _ = state.withLock { $0.reserved.remove(enrolled.name) } }
        }
        if let refusal { try await refuse(refusal, outcome: .failure) }
        guard gateway.isOnline(enrolled.name) else {
            try await refuse(.machineOffline(enrolled.name), outcome: .failure)
        }
        let offer = Offer(
            session: session, machine: enrolled.name,
            helper: .init(
                account: identity.person.account, dn: identity.person.dn, displayName: identity.person.displayName),
            mode: mode, ticket: ticket, reason: reason, policyVersion: version ?? 0, policies: decision.policies,
            consentTimeoutSeconds: consentTimeout.components.seconds, issuedAt: AuditTimestamp(now))
        details["offer_hash"] = .string(offer.hash)
        details["consent_timeout_seconds"] = .integer(consentTimeout.components.seconds)
        details["max_duration_seconds"] = .integer(maximumDuration.components.seconds)
        try await record(
            AuditEvent(
                .offerRequested, time: clock.timestamp, actor: actor, machine: enrolled.name, session: session,
                source: source,
                policy: .init(version: version, names: decision.policies), outcome: .success, details: details))
        let live = Live(
            offer: offer, machineKey: enrolled.publicKey,
            machine: SessionStateMachine(
                mode: mode, offeredAt: AuditTimestamp(now), consentTimeout: consentTimeout,
                maximumDuration: maximumDuration))
        state.withLock { state in
            state.sessions[session] = live
            state.reserved.remove(enrolled.name)
        }
        holdsReservation = false
        logger.notice(
            "offer sent", metadata: ["session.id": "\(session)", "machine": "\(enrolled.name)", "mode": "\(mode)"])
        if await !gateway.send(.offer(offer), to: enrolled.name) {
            await end(session, reason: .agentDisconnected, actor: .system(ServerApplication.instanceName))
        }
        await publish(live, id: session)
        return snapshot(of: session) ?? Self.snapshot(live, id: session)
    }

    // MARK: Helper actions

    /// Asks the novice to grant control, as the session's helper.
    /// - Throws: `SessionError.unknownSession` for a session the operator cannot see,
    ///   `.onlyTheHelperMayRequestControl`, `.invalidState` when control cannot be requested now (with why).
    public func requestControl(
        _ id: UUID, by identity: OperatorService.Identity, source: String
    )
        async throws(SessionError) -> SessionSnapshot
    {
        let live = try visible(id, to: identity)
        guard live.offer.helper.dn == identity.person.dn else {
            throw .onlyTheHelperMayRequestControl
        }
        let (_, request) = try await transition(
            id, .requestControl,
            actor: .operator(dn: identity.person.dn, account: identity.person.account), source: source)
        _ = await gateway.send(.controlRequest(session: id, request: request), to: live.offer.machine)
        return snapshot(of: id) ?? Self.snapshot(live, id: id)
    }

    /// Ends a session, as its helper or an administrator.
    /// - Throws: `SessionError.unknownSession` for a session the operator cannot see,
    ///   `.onlyTheHelperOrAnAdministratorMayEnd`, `.sessionEnded` or `.invalidState` when it has already ended.
    public func end(
        _ id: UUID, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError)
        -> SessionSnapshot
    {
        let live = try visible(id, to: identity)
        let isHelper = live.offer.helper.dn == identity.person.dn
        guard isHelper || identity.roles.contains(.administrator) else {
            throw .onlyTheHelperOrAnAdministratorMayEnd
        }
        _ = try await transition(
            id, .end(isHelper ? .helperEnded : .adminTerminated),
            actor: .operator(dn: identity.person.dn, account: identity.person.account), source: source)
        return snapshot(of: id) ?? Self.snapshot(live, id: id)
    }

    /// The sessions `identity` may see: their own; every one for administrators and auditors.
    public func sessions(for identity: OperatorService.Identity) -> [SessionSnapshot] {
        state.withLock { state in
            let live = state.sessions.map { ($0.key, $0.value) } + state.ended.map { ($0.key, $0.value.live) }
            return live.map { Self.snapshot($0.1, id: $0.0) }.filter(identity.maySee)
                .sorted { $0.offeredAt > $1.offeredAt }
        }
    }

    /// One session, if `identity` may see it.
    public func session(_ id: UUID, for identity: OperatorService.Identity) throws(SessionError) -> SessionSnapshot {
        Self.snapshot(try visible(id, to: identity), id: id)
    }

    /// The session's state now and at every change, until it ends.
    public func watch(
        _ id: UUID, for identity: OperatorService.Identity
    ) throws(SessionError)
        -> AsyncStream<SessionSnapshot>
    {
        let live = try visible(id, to: identity)
        let (stream, continuation) = AsyncStream<SessionSnapshot>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let watcher = UUID()
        let current = state.withLock { state -> SessionSnapshot? in
            guard state.sessions[id] != nil else { return nil }
            state.watchers[id, default: [:]][watcher] = continuation
            return Self.snapshot(state.sessions[id]!, id: id)
        }
        continuation.yield(current ?? Self.snapshot(live, id: id))
        if current == nil { continuation.finish() }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { $0.watchers[id]?[watcher] = nil }
        }
        return stream
    }

    // MARK: From the agent

    /// Handles a message from the authenticated agent of `machine`.
    func handle(_ message: AgentProtocol.AgentMessage, from machine: String, source: String) async {
        let actor = AuditActor.machine(machine)
        switch message {
        case .hello, .authenticate:
            return
        case .offerReceived(let id):
            guard belongs(id, to: machine) else { return }
            _ = try? await transition(id, .delivered, actor: actor, source: source)
        case .consent(let receipt):
            await handleConsent(receipt, from: machine, source: source)
        case .controlStopped(let id, let method):
            guard belongs(id, to: machine) else { return }
            _ = try? await transition(
                id, .stopControl(method), actor: actor, source: source, details: ["how": .string(method.rawValue)])
        case .sessionEnded(let id):
            guard belongs(id, to: machine) else { return }
            _ = try? await transition(id, .end(.noviceEnded), actor: actor, source: source)
        }
    }

    /// Ends every session of `machine`: its agent's connection is gone, because the agent left or because this
    /// server is stopping.
    func agentDisconnected(_ machine: String, serverStopping: Bool) async {
        let ids = state.withLock { $0.sessions.filter { $0.value.offer.machine == machine }.map(\.key) }
        for id in ids {
            await end(
                id, reason: serverStopping ? .serverRestart : .agentDisconnected,
                actor: .system(ServerApplication.instanceName))
        }
    }

    private func handleConsent(_ receipt: ConsentReceipt, from machine: String, source: String) async {
        let id = receipt.session
        guard let live = state.withLock({ $0.sessions[id] }), live.offer.machine == machine else {
            await rejectConsent(receipt, machine: machine, source: source, reason: "unknown_session")
            return
        }
        let question: ConsentReceipt.Question
        let request: Int
        switch live.machine.state {
        case .offered, .awaitingConsent:
            (question, request) = (.session, 0)
        case .controlRequested:
            (question, request) = (.control, live.machine.controlRequests)
        default:
            await rejectConsent(receipt, machine: machine, source: source, reason: "no_question_pending")
            return
        }
        guard let key = try? DevicePublicKey.parse(live.machineKey) else {
            await rejectConsent(receipt, machine: machine, source: source, reason: "bad_signature")
            return
        }
        do throws(ConsentReceiptError) {
            try receipt.verify(answering: question, request: request, of: live.offer, with: key)
        } catch {
            await rejectConsent(receipt, machine: machine, source: source, reason: error.code)
            return
        }
        let input: SessionStateMachine.Input =
            question == .session ? .consent(receipt.answer) : .controlAnswer(receipt.answer)
        let details: [String: AuditValue] = [
            "receipt": receipt.auditValue,
            "public_key": .string(live.machineKey),
        ]
        do {
            _ = try await transition(id, input, actor: .machine(machine), source: source, details: details)
        } catch {
            // Too late (the deadline passed) or not recorded: the answer does not count.
            logger.notice(
                "consent not applied", metadata: ["session.id": "\(id)", "reason": "\(error.message)"])
        }
    }

    private func rejectConsent(_ receipt: ConsentReceipt, machine: String, source: String, reason: String) async {
        logger.warning(
            "consent rejected",
            metadata: ["session.id": "\(receipt.session)", "machine": "\(machine)", "reason": "\(reason)"])
        // Nothing was allowed by it; the record must not be lost, nor wait.
        journal.record([
            AuditEvent(
                .consentRejected, time: clock.timestamp, actor: .machine(machine), machine: machine,
                session: receipt.session, source: source,
                outcome: .denied,
                details: [
                    "reason": .string(reason), "question": .string(receipt.question.rawValue),
                    "request": .integer(Int64(receipt.request)), "answer": .string(receipt.answer.rawValue),
                ])
        ])
    }

    /// Records `event` through the journal: for what happened and cannot be undone by refusing (a screen closed,
    /// input dropped, a ticket refused), which must not be lost and must not hold anything up.
    func recordEventually(_ event: AuditEvent) {
        journal.record([event])
    }

    // MARK: Deadlines and policy

    /// Applies deadlines as they fall due, and checks live sessions again when another policy version becomes active
    /// and every minute for lost memberships, until shutdown. Between two rounds it sleeps until the next deadline,
    /// woken early by any change of a session (which may bring a deadline closer) or of the policy.
    public func run() async throws {
        policies.signalActivations(to: wakeup)
        await cancelWhenGracefulShutdown {
            var version = self.policies.active.activation?.version
            var lastMembershipCheck = self.clock.instant()
            while !Task.isCancelled {
                await self.expireDue(at: self.clock.now())
                let current = self.policies.active.activation?.version
                if current != version {
                    version = current
                    await self.recheck(endingWith: .policyRevoked)
                } else if self.clock.instant() - lastMembershipCheck > Self.membershipCheckInterval {
                    lastMembershipCheck = self.clock.instant()
                    await self.recheck(endingWith: .membershipLost)
                }
                let membershipDue = Self.membershipCheckInterval - (self.clock.instant() - lastMembershipCheck)
                await self.wakeup.wait(atMost: max(.milliseconds(10), min(membershipDue, self.untilNextDeadline())))
            }
        }
        // Shutting down: the sessions held here cannot go on.
        let ids = state.withLock { Array($0.sessions.keys) }
        for id in ids {
            await end(id, reason: .serverRestart, actor: .system(ServerApplication.instanceName))
        }
    }

    /// How often live sessions are checked for helpers who lost the group that allowed them.
    static let membershipCheckInterval = Duration.seconds(60)

    /// The time until the earliest deadline of the live sessions (at most a minute).
    private func untilNextDeadline() -> Duration {
        let next = state.withLock { state in state.sessions.values.compactMap(\.machine.deadline).min() }
        guard let next else { return .seconds(60) }
        return min(.seconds(60), .seconds(max(0, next.date.timeIntervalSince(clock.now()))))
    }

    /// Applies every deadline that has passed at `date`.
    func expireDue(at date: Date) async {
        let now = AuditTimestamp(date)
        let due = state.withLock { state in
            state.sessions.filter { $0.value.machine.deadline.map { $0 <= now } ?? false }.map(\.key)
        }
        for id in due {
            let result = state.withLock { state -> (Live, SessionStateMachine.Step)? in
                guard var live = state.sessions[id], let step = live.machine.expire(at: now) else { return nil }
                live.revision += 1
                state.sessions[id] = live
                return (live, step)
            }
            guard let (after, step) = result else { continue }
            // Every deadline takes access away (or refuses it): it is never held up by its record.
            await takeEffect(
                step, of: after, id: id, actor: .system(ServerApplication.instanceName), source: nil,
                details: step.timedOut ? ["timed_out": true] : [:], confirmingWithin: .zero)
        }
        pruneEnded(before: date.addingTimeInterval(-3600))
    }

    /// Decides every live session again with the active policy and the directory's facts now, and ends those it
    /// no longer allows with `reason`. A session whose facts cannot be read now is left alone and checked again
    /// at the next round.
    func recheck(endingWith reason: SessionEndReason) async {
        let sessions = state.withLock { $0.sessions.map { ($0.key, $0.value) } }
        for (id, live) in sessions {
            let allowed: Bool
            do {
                guard let computer = try await directory.computer(named: live.offer.machine),
                    let dn = try? DistinguishedName(live.offer.helper.dn)
                else {
                    await end(id, reason: reason, actor: .system(ServerApplication.instanceName))
                    continue
                }
                let groups = try await directory.groups(of: dn)
                let decision = policies.active.set.decide(
                    operatorGroups: groups, machine: MachineFacts(computer), mode: live.offer.mode,
                    ticket: live.offer.ticket, at: clock.now())
                allowed = decision.allowed.map { $0 >= live.offer.mode } ?? false
            } catch {
                logger.warning(
                    "could not check a session against the directory; checking again later",
                    metadata: ["session.id": "\(id)", "error": "\(error.description)"])
                continue
            }
            if !allowed {
                logger.notice("session no longer allowed", metadata: ["session.id": "\(id)", "reason": "\(reason)"])
                await end(id, reason: reason, actor: .system(ServerApplication.instanceName))
            }
        }
    }

    // MARK: Transitions

    /// How long a request that ended access waits for its events to be stored before it is answered anyway (the
    /// end has taken effect; the events are stored later).
    static let endRecordWait = Duration.seconds(2)

    /// Applies `input` to the session and announces it to watchers (and the agent when it ends). A step that gives
    /// access is recorded first and undone when it cannot be; one that takes access away takes effect at once and
    /// is recorded through the journal (waiting for that at most `confirmingWithin`).
    /// - Returns: the step and the session's control request number after it.
    @discardableResult
    private func transition(
        _ id: UUID,
        _ input: SessionStateMachine.Input,
        actor: AuditActor,
        source: String?,
        details: [String: AuditValue] = [:],
        confirmingWithin wait: Duration = SessionBroker.endRecordWait
    ) async throws(SessionError) -> (SessionSnapshot, Int) {
        let now = clock.timestamp
        let result = state.withLock { state -> Result<(Live, Live, SessionStateMachine.Step), SessionError> in
            guard var live = state.sessions[id] else {
                return .failure(.sessionEnded)
            }
            let before = live
            do throws(SessionTransitionError) {
                let step = try live.machine.handle(input, at: now)
                live.revision += 1
                state.sessions[id] = live
                return .success((before, live, step))
            } catch {
                return .failure(.invalidState(error))
            }
        }
        let (before, after, step) = try result.get()
        if step.reducesAccess {
            await takeEffect(
                step, of: after, id: id, actor: actor, source: source, details: details, confirmingWithin: wait)
            return (Self.snapshot(after, id: id), after.machine.controlRequests)
        }
        do throws(SessionError) {
            for event in events(of: step, of: after, id: id, actor: actor, source: source, details: details) {
                try await record(event)
            }
        } catch {
            restore(id, to: before, unless: after)
            throw error
        }
        await announce(step, of: after, id: id)
        return (Self.snapshot(after, id: id), after.machine.controlRequests)
    }

    /// A step that takes access away: its events go to the journal (on disk) first, then it takes effect at once —
    /// watchers told, the agent told, screens closed — and only then is its record awaited, at most `wait`.
    private func takeEffect(
        _ step: SessionStateMachine.Step,
        of live: Live,
        id: UUID,
        actor: AuditActor,
        source: String?,
        details: [String: AuditValue],
        confirmingWithin wait: Duration
    ) async {
        let events = events(of: step, of: live, id: id, actor: actor, source: source, details: details)
        journal.record(events)
        await announce(step, of: live, id: id)
        if let last = events.last, !(await journal.waitUntilStored(last.id, atMost: wait)), wait > .zero {
            logger.warning(
                "access ended; its record waits for the audit log",
                metadata: ["session.id": "\(id)", "audit.event": "\(last.name)"])
        }
    }

    /// Ends a session for a reason of the server's (agent gone, shutdown, policy, membership), recording it.
    private func end(_ id: UUID, reason: SessionEndReason, actor: AuditActor) async {
        do throws(SessionError) {
            // A stopping server does not wait for the records of the sessions it ends: the journal keeps them.
            try await transition(
                id, .end(reason), actor: actor, source: nil,
                confirmingWithin: reason == .serverRestart ? .zero : Self.endRecordWait)
        } catch {
            logger.error(
                "could not end a session", metadata: ["session.id": "\(id)", "reason": "\(reason.rawValue)"])
        }
    }

    /// The audit events that record `step`, in order.
    private func events(
        of step: SessionStateMachine.Step,
        of live: Live,
        id: UUID,
        actor: AuditActor,
        source: String?,
        details: [String: AuditValue]
    ) -> [AuditEvent] {
        step.events.map { type in
            var eventDetails = details
            eventDetails["state"] = .string(step.state.name)
            if case .ended(let reason) = step.state, type == .sessionEnded {
                eventDetails["reason"] = .string(reason.rawValue)
                eventDetails["control_requests"] = .integer(Int64(live.machine.controlRequests))
                eventDetails["screen"] = (screens.totals(of: id) ?? ScreenRelay.Totals()).auditValue
            }
            if type == .controlRequested || type == .controlGranted || type == .controlDenied {
                eventDetails["request"] = .integer(Int64(live.machine.controlRequests))
            }
            let outcome: AuditOutcome =
                switch type {
                case .consentDeclined, .consentTimeout, .controlDenied: .denied
                default: .success
                }
            return AuditEvent(
                type, time: clock.timestamp, actor: actor, machine: live.offer.machine, session: id, source: source,
                policy: .init(version: live.offer.policyVersion, names: live.offer.policies), outcome: outcome,
                details: eventDetails)
        }
    }

    /// Tells watchers, and the agent when the session ended or control was taken back by the helper's side.
    private func announce(_ step: SessionStateMachine.Step, of live: Live, id: UUID) async {
        let snapshot = Self.snapshot(live, id: id)
        let watchers = state.withLock { state -> [AsyncStream<SessionSnapshot>.Continuation] in
            let watchers = Array((state.watchers[id] ?? [:]).values)
            if case .ended = step.state {
                state.sessions[id] = nil
                state.ended[id] = (live, clock.now())
                state.watchers[id] = nil
            }
            return watchers
        }
        for watcher in watchers {
            watcher.yield(snapshot)
            if case .ended = step.state { watcher.finish() }
        }
        await publish(live, id: id)
        if case .ended(let reason) = step.state, reason != .noviceEnded, reason != .declined {
            _ = await gateway.send(.endSession(session: id, reason: reason), to: live.offer.machine)
        }
        // Its screens close after the agent has been told, so a viewer slow to close delays nothing else.
        if case .ended = step.state { await screens.end(session: id) }
    }

    private func restore(_ id: UUID, to before: Live, unless after: Live) {
        state.withLock { state in
            if let current = state.sessions[id], current.revision == after.revision { state.sessions[id] = before }
        }
    }

    private func publish(_ live: Live, id: UUID) async {
        // The session's deadline may have moved: the deadline loop looks again.
        wakeup.signal()
        await changes.withLock({ $0 })?(Self.snapshot(live, id: id), live.revision)
    }

    private func pruneEnded(before date: Date) {
        state.withLock { state in state.ended = state.ended.filter { $0.value.at >= date } }
    }

    private func belongs(_ id: UUID, to machine: String) -> Bool {
        state.withLock { $0.sessions[id]?.offer.machine == machine }
    }

    private func visible(_ id: UUID, to identity: OperatorService.Identity) throws(SessionError) -> Live {
        let found = state.withLock { $0.sessions[id] ?? $0.ended[id]?.live }
        guard let found, identity.maySee(Self.snapshot(found, id: id)) else {
            throw .unknownSession(id)
        }
        return found
    }

    private func snapshot(of id: UUID) -> SessionSnapshot? {
        state.withLock { state in (state.sessions[id] ?? state.ended[id]?.live).map { Self.snapshot($0, id: id) } }
    }

    private static func snapshot(_ live: Live, id: UUID) -> SessionSnapshot {
        var endReason: SessionEndReason?
        if case .ended(let reason) = live.machine.state { endReason = reason }
        return SessionSnapshot(
            id: id, machine: live.offer.machine, helper: live.offer.helper.account, helperDN: live.offer.helper.dn,
            mode: live.offer.mode, state: live.machine.state.name, endReason: endReason, ticket: live.offer.ticket,
            reason: live.offer.reason, policies: live.offer.policies, policyVersion: live.offer.policyVersion,
            offeredAt: live.machine.offeredAt.date, startedAt: live.machine.startedAt?.date,
            deadline: live.machine.deadline?.date, controlRequests: live.machine.controlRequests)
    }

    /// Records `event`, or refuses when the audit log cannot take it.
    func record(_ event: AuditEvent) async throws(SessionError) {
        do {
            try await audit.record(event)
        } catch {
            logger.error(
                "refusing an action that cannot be audited",
                metadata: ["audit.event": "\(event.name)", "error": "\(error.reason)"])
            throw .auditUnavailable
        }
    }
}
