public import Foundation
import Logging
public import ORACore
import ORAStore

/// The sessions this server runs, through `SessionStateMachine`: it opens each session an offer started
/// (`OfferIntake` decides and records the offer), applies what the helper, the agent (`AgentMessages`) and the
/// deadlines (`SessionDeadlines`) bring, and tells the agent, the watchers and the other replicas of every change.
///
/// A transition that gives access (or asks for it) is recorded in the audit log before its effect: until its record
/// is stored it is only pending (`SessionTable.Live.pending`), and the session stands as it was for everyone — the
/// API, screen tickets, the relay's input filter, the agent; when the record cannot be written, it is dropped and
/// the action refused. A transition that takes access away — the session ends, control is stopped or refused — never
/// waits for the log: it takes effect at once (screen tickets revoked, viewers closed, the agent told) and its events
/// go to the `AuditJournal`, which stores them as soon as it can, in order, and keeps them across a restart.
public final class SessionBroker: Sendable {
    typealias Live = SessionTable.Live

    let table: SessionTable
    let links: AgentLinks
    let audit: SessionAudit
    private let screens: ScreenRelay
    let copies: SessionCopies
    let clock: ServerClock
    let logger: Logger
    /// How chat lines are kept in the audit log: as typed, or only their digest.
    let chatRecording: ChatRecording
    /// Where chat lines go for the other replicas' watchers.
    let chatCopies: ChatCopies?

    /// Creates the broker.
    /// - Parameters:
    ///   - links: where messages to the agents go.
    ///   - copies: where every change is written for the other replicas.
    ///   - chatRecording: how chat lines are kept in the audit log.
    ///   - chatCopies: where chat lines go for the other replicas (`nil`: nowhere).
    init(
        table: SessionTable, links: AgentLinks, audit: SessionAudit, screens: ScreenRelay, copies: SessionCopies,
        clock: ServerClock, logger: Logger, chatRecording: ChatRecording = .text, chatCopies: ChatCopies? = nil
    ) {
        self.chatRecording = chatRecording
        self.chatCopies = chatCopies
        self.table = table
        self.links = links
        self.audit = audit
        self.screens = screens
        self.copies = copies
        self.clock = clock
        self.logger = logger
    }

    /// Whether the session runs here, or ended here lately.
    func runsHere(_ id: UUID) -> Bool {
        table.contains(id)
    }

    /// The offer and state of the live session `id`, if it runs here.
    func live(_ id: UUID) -> (offer: Offer, state: SessionStateMachine.State)? {
        table.live(id).map { ($0.offer, $0.machine.state) }
    }

    // MARK: Opening

    /// Opens the session `live` that `OfferIntake` recorded, and sends its offer to the agent; when the agent cannot
    /// be told, the session ends at once (`agent_disconnected`).
    /// - Returns: the session.
    func open(_ live: Live, id: UUID) async -> SessionSnapshot {
        table.open(live, id: id)
        logger.notice(
            "offer sent",
            metadata: ["session.id": "\(id)", "machine": "\(live.offer.machine)", "mode": "\(live.offer.mode)"])
        if await !links.send(.offer(live.offer), to: live.offer.machine) {
            await end(id, reason: .agentDisconnected, actor: .system(ServerApplication.instanceName))
        }
        await publish(live, id: id)
        return table.snapshot(of: id) ?? SessionTable.snapshot(live, id: id)
    }

    // MARK: Helper actions

    /// Asks the novice to grant control, as the session's helper.
    /// - Throws: `SessionError.unknownSession` for a session the operator cannot see,
    ///   `.onlyTheHelperMayRequestControl`, `.invalidState` when control cannot be requested now (with why).
    public func requestControl(
        _ id: UUID, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> SessionSnapshot {
        let live = try table.visible(id, to: identity)
        guard live.offer.helper.dn == identity.person.dn else {
            throw .onlyTheHelperMayRequestControl
        }
        let (_, request) = try await transition(
            id, .requestControl,
            actor: .operator(dn: identity.person.dn, account: identity.person.account), source: source)
        _ = await links.send(.controlRequest(session: id, request: request), to: live.offer.machine)
        return table.snapshot(of: id) ?? SessionTable.snapshot(live, id: id)
    }

    /// Ends a session, as its helper or an administrator.
    /// - Throws: `SessionError.unknownSession` for a session the operator cannot see,
    ///   `.onlyTheHelperOrAnAdministratorMayEnd`, `.sessionEnded` or `.invalidState` when it has already ended.
    public func end(
        _ id: UUID, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> SessionSnapshot {
        let live = try table.visible(id, to: identity)
        let isHelper = live.offer.helper.dn == identity.person.dn
        guard isHelper || identity.roles.contains(.administrator) else {
            throw .onlyTheHelperOrAnAdministratorMayEnd
        }
        _ = try await transition(
            id, .end(isHelper ? .helperEnded : .adminTerminated),
            actor: .operator(dn: identity.person.dn, account: identity.person.account), source: source)
        return table.snapshot(of: id) ?? SessionTable.snapshot(live, id: id)
    }

    /// The sessions `identity` may see: their own; every one for administrators and auditors.
    public func sessions(for identity: OperatorService.Identity) -> [SessionSnapshot] {
        table.snapshots(for: identity)
    }

    /// One session, if `identity` may see it.
    public func session(_ id: UUID, for identity: OperatorService.Identity) throws(SessionError) -> SessionSnapshot {
        SessionTable.snapshot(try table.visible(id, to: identity), id: id)
    }

    /// The session's state now and at every change, and its chat lines as they come, until it ends.
    func watch(
        _ id: UUID, for identity: OperatorService.Identity
    ) throws(SessionError) -> AsyncStream<SessionEvent> {
        table.watch(id, seen: try table.visible(id, to: identity))
    }

    /// Ends every session of `machine`: its agent's connection is gone, because the agent left or because this
    /// server is stopping.
    func agentDisconnected(_ machine: String, serverStopping: Bool) async {
        for id in table.ids(of: machine) {
            await end(
                id, reason: serverStopping ? .serverRestart : .agentDisconnected,
                actor: .system(ServerApplication.instanceName))
        }
    }

    /// Records `event`, or refuses when the audit log cannot take it.
    func record(_ event: AuditEvent) async throws(SessionError) {
        try await audit.record(event)
    }

    /// Records `event` through the journal: for what happened and cannot be undone by refusing (a screen closed,
    /// input dropped, a ticket refused), which must not be lost and must not hold anything up.
    func recordEventually(_ event: AuditEvent) {
        audit.recordEventually([event])
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
    func transition(
        _ id: UUID,
        _ input: SessionStateMachine.Input,
        actor: AuditActor,
        source: String?,
        details: [String: AuditValue] = [:],
        confirmingWithin wait: Duration = SessionBroker.endRecordWait
    ) async throws(SessionError) -> (SessionSnapshot, Int) {
        let now = clock.timestamp
        // A step that gives access is kept pending, not in effect, until its record is stored: until then the
        // session stands as it was for everyone — its state as shown, screen tickets, the relay's input filter.
        let changed = try table.update(id, recordedFirst: { !$0.reducesAccess }) {
            machine throws(SessionError) in
            do throws(SessionTransitionError) {
                return try machine.handle(input, at: now)
            } catch {
                throw .invalidState(error)
            }
        }
        guard let (_, after, step) = changed else { throw .sessionEnded }
        if step.reducesAccess {
            audit.metrics.stepped(input, step, offeredAt: after.machine.offeredAt, now: now)
            await takeEffect(
                step, of: after, id: id, actor: actor, source: source, details: details, confirmingWithin: wait)
            return (SessionTable.snapshot(after, id: id), after.machine.controlRequests)
        }
        do throws(SessionError) {
            for event in events(of: step, of: after, id: id, actor: actor, source: source, details: details) {
                try await audit.record(event)
            }
        } catch {
            table.drop(id, after)
            throw error
        }
        audit.metrics.stepped(input, step, offeredAt: after.machine.offeredAt, now: now)
        guard let settled = table.settle(id, after) else {
            // A step that took access away came first, while this one was being recorded (its record stays, the
            // later one's follows it): that step stands, and this one does not take effect.
            throw table.live(id) == nil ? .sessionEnded : .sessionChanging
        }
        await announce(step, of: settled, id: id)
        return (SessionTable.snapshot(settled, id: id), settled.machine.controlRequests)
    }

    /// A step that takes access away: its events go to the journal (on disk) first, then it takes effect at once —
    /// watchers told, the agent told, screens closed — and only then is its record awaited, at most `wait`.
    func takeEffect(
        _ step: SessionStateMachine.Step,
        of live: Live,
        id: UUID,
        actor: AuditActor,
        source: String?,
        details: [String: AuditValue],
        confirmingWithin wait: Duration
    ) async {
        let events = events(of: step, of: live, id: id, actor: actor, source: source, details: details)
        audit.recordEventually(events)
        await announce(step, of: live, id: id)
        if let last = events.last, !(await audit.journal.waitUntilStored(last.id, atMost: wait)), wait > .zero {
            logger.warning(
                "access ended; its record waits for the audit log",
                metadata: ["session.id": "\(id)", "audit.event": "\(last.name)"])
        }
    }

    /// Ends a session for a reason of the server's (agent gone, shutdown, policy, membership), recording it.
    func end(_ id: UUID, reason: SessionEndReason, actor: AuditActor) async {
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
                eventDetails["control_requests"] = .integer(Int64(live.latest.controlRequests))
                eventDetails["screen"] = (screens.totals(of: id) ?? ScreenRelay.Totals()).auditValue
            }
            if type == .controlRequested || type == .controlGranted || type == .controlDenied {
                eventDetails["request"] = .integer(Int64(live.latest.controlRequests))
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
        var ended = false
        if case .ended = step.state { ended = true }
        for watcher in table.announce(id, ending: ended, with: live, at: clock.now()) { watcher.finish() }
        await publish(live, id: id)
        if case .ended(let reason) = step.state, reason != .noviceEnded, reason != .declined {
            _ = await links.send(.endSession(session: id, reason: reason), to: live.offer.machine)
        }
        // Its screens close after the agent has been told, so a viewer slow to close delays nothing else.
        if case .ended = step.state { await screens.end(session: id) }
    }

    func publish(_ live: Live, id: UUID) async {
        // The session's deadline may have moved: the deadline loop looks again.
        table.wakeup.signal()
        await copies.publish(SessionTable.snapshot(live, id: id), revision: live.revision)
    }
}
