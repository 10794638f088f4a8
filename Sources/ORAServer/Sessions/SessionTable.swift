import Foundation
import ORACore
import Synchronization

/// The sessions this server runs, and those that ended here in the last hour: one session per machine, each with
/// the offer it started from and its `SessionStateMachine`. Only bookkeeping: deciding, recording and telling
/// anyone is the broker's (`SessionBroker`), the offers' (`OfferIntake`) and the deadlines' (`SessionDeadlines`).
final class SessionTable: Sendable {
    /// One live session.
    struct Live: Sendable {
        var offer: Offer
        var machineKey: String
        /// The session as it stands: every step in it is recorded. What the helper may see and do, what the API
        /// shows and what the relay lets through follow this.
        var machine: SessionStateMachine
        /// The session after a step that gives access and is being recorded; it takes its place once recorded
        /// (`settle`), and is dropped when it cannot be (`drop`).
        var pending: SessionStateMachine?
        /// Counts the changes, so copies written elsewhere can tell which is newer.
        var revision = 0
        /// What the person's agent last said of them: the session window on screen, typing.
        var presence: PersonPresence?
        /// How many chat lines were delivered; the next is numbered one more.
        var chatLines = 0

        /// Where the session is going: the step being recorded if there is one, else where it stands. Every new
        /// step starts from here, so none is taken twice.
        var latest: SessionStateMachine { pending ?? machine }
    }

    private struct State: Sendable {
        var sessions: [UUID: Live] = [:]
        /// Ended sessions, kept a while so helpers can read how they ended.
        var ended: [UUID: (live: Live, at: Date)] = [:]
        var watchers: [UUID: [UUID: AsyncStream<SessionEvent>.Continuation]] = [:]
        var offers: WindowRateLimiter
        /// Chat lines per session and side.
        var chat: WindowRateLimiter
        /// Machines with an offer being recorded: one session per machine, even for offers made at once.
        var reserved: Set<String> = []
    }

    private let state: Mutex<State>
    /// Woken at every change of a session (which may bring a deadline closer) and of the policy.
    let wakeup = Wakeup()

    /// How many chat lines each side of a session may write within `chatWindow`: a line a second and a half,
    /// kept up, or a burst of 30 (pasted instructions, line by line).
    static let chatLinesPerWindow = 30
    /// See `chatLinesPerWindow`.
    static let chatWindow = Duration.seconds(20)

    /// - Parameter offersPerMinute: how many offers one machine may get in a minute.
    init(offersPerMinute: Int) {
        state = Mutex(
            State(
                offers: WindowRateLimiter(perWindow: offersPerMinute),
                chat: WindowRateLimiter(perWindow: Self.chatLinesPerWindow, window: Self.chatWindow)))
    }

    // MARK: Offers

    /// Holds `machine` for an offer being recorded, unless it is in a session or being offered already, or was
    /// offered too often in the last minute.
    /// - Returns: why not, or `nil` when it is held (until `open` or `release`).
    func reserve(_ machine: String, at now: Date) -> SessionError? {
        state.withLock { state in
            if state.reserved.contains(machine)
                || state.sessions.values.contains(where: { $0.offer.machine == machine })
            {
                return .machineBusy(machine)
            }
            if case .limited(let recent, let retryAfter) = state.offers.admit(machine, at: now) {
                return .tooManyOffers(machine: machine, recent: recent, retryAfter: retryAfter)
            }
            state.reserved.insert(machine)
            return nil
        }
    }

    /// Lets go of a machine `reserve` held, for an offer that failed.
    func release(_ machine: String) {
        _ = state.withLock { $0.reserved.remove(machine) }
    }

    /// Puts the new session `id` in place of its machine's reservation.
    func open(_ live: Live, id: UUID) {
        state.withLock { state in
            state.sessions[id] = live
            state.reserved.remove(live.offer.machine)
        }
    }

    // MARK: Reading

    /// How many of this server's sessions the person accepted and are open now: with the helper viewing (or asking
    /// for control), and in control.
    func activeCounts() -> (viewing: Int, controlling: Int) {
        state.withLock { state in
            var counts = (viewing: 0, controlling: 0)
            for live in state.sessions.values where live.machine.state.isActive {
                if live.machine.state.hasControl { counts.controlling += 1 } else { counts.viewing += 1 }
            }
            return counts
        }
    }

    /// The live session `id`, if it runs here.
    func live(_ id: UUID) -> Live? {
        state.withLock { $0.sessions[id] }
    }

    /// Whether the session runs here, or ended here lately.
    func contains(_ id: UUID) -> Bool {
        any(id) != nil
    }

    /// The session `id`, live or ended lately.
    func any(_ id: UUID) -> Live? {
        state.withLock { $0.sessions[id] ?? $0.ended[id]?.live }
    }

    /// The live sessions.
    var allLive: [(id: UUID, live: Live)] {
        state.withLock { $0.sessions.map { ($0.key, $0.value) } }
    }

    /// The live sessions of `machine`.
    func ids(of machine: String) -> [UUID] {
        state.withLock { $0.sessions.filter { $0.value.offer.machine == machine }.map(\.key) }
    }

    /// Every session, live or ended lately, as `identity` may see them.
    func snapshots(for identity: OperatorService.Identity) -> [SessionSnapshot] {
        state.withLock { state in
            let live = state.sessions.map { ($0.key, $0.value) } + state.ended.map { ($0.key, $0.value.live) }
            return live.map { Self.snapshot($0.1, id: $0.0) }.filter(identity.maySee)
                .sorted { $0.offeredAt > $1.offeredAt }
        }
    }

    /// The session `id`, live or ended lately, if `identity` may see it.
    /// - Throws: `SessionError.unknownSession` otherwise.
    func visible(_ id: UUID, to identity: OperatorService.Identity) throws(SessionError) -> Live {
        guard let found = any(id), identity.maySee(Self.snapshot(found, id: id)) else {
            throw .unknownSession(id)
        }
        return found
    }

    /// The session's state now, or `nil` when it is not here.
    func snapshot(of id: UUID) -> SessionSnapshot? {
        any(id).map { Self.snapshot($0, id: id) }
    }

    static func snapshot(_ live: Live, id: UUID) -> SessionSnapshot {
        var endReason: SessionEndReason?
        if case .ended(let reason) = live.machine.state { endReason = reason }
        return SessionSnapshot(
            id: id, machine: live.offer.machine, helper: live.offer.helper.account, helperDN: live.offer.helper.dn,
            mode: live.offer.mode, state: live.machine.state.name, endReason: endReason, ticket: live.offer.ticket,
            reason: live.offer.reason, policies: live.offer.policies, policyVersion: live.offer.policyVersion,
            offeredAt: live.machine.offeredAt.date, startedAt: live.machine.startedAt?.date,
            deadline: live.machine.deadline?.date, controlRequests: live.machine.controlRequests,
            person: live.presence, controlStoppedBy: live.machine.lastControlStop?.method,
            controlStoppedAt: live.machine.lastControlStop?.at.date, chatMessages: live.chatLines)
    }

    // MARK: Changing

    /// Applies `change` to where the live session `id` is going (`Live.latest`) and counts the change. A step
    /// that `recordedFirst` says must be recorded before it takes effect is only kept as pending: the session
    /// stands as it was until `settle`. Any other step takes effect at once, and replaces a pending one.
    /// - Returns: the session before and after, and what `change` returned; `nil` when the session is not live or
    ///   `change` returned `nil` (and changed nothing).
    /// - Throws: what `change` throws; `SessionError.sessionChanging` for a step to be recorded first while another
    ///   one is.
    func update<Step>(
        _ id: UUID, recordedFirst: (Step) -> Bool = { _ in false },
        _ change: (inout SessionStateMachine) throws(SessionError) -> Step?
    ) throws(SessionError) -> (before: Live, after: Live, step: Step)? {
        let result = state.withLock { state -> Result<(Live, Live, Step)?, SessionError> in
            guard var live = state.sessions[id] else { return .success(nil) }
            let before = live
            var machine = live.latest
            do throws(SessionError) {
                guard let step = try change(&machine) else { return .success(nil) }
                if recordedFirst(step) {
                    guard live.pending == nil else { return .failure(.sessionChanging) }
                    live.pending = machine
                } else {
                    (live.machine, live.pending) = (machine, nil)
                }
                live.revision += 1
                state.sessions[id] = live
                return .success((before, live, step))
            } catch {
                return .failure(error)
            }
        }
        return try result.get().map { (before: $0.0, after: $0.1, step: $0.2) }
    }

    /// Puts the pending step of `after` in effect, now that it is recorded.
    /// - Returns: the session after; `nil` when that step is no longer pending (a step that took access away came
    ///   in between, or the session ended).
    func settle(_ id: UUID, _ after: Live) -> Live? {
        state.withLock { state in
            guard var live = state.sessions[id], let pending = live.pending, pending == after.pending else {
                return nil
            }
            (live.machine, live.pending) = (pending, nil)
            live.revision += 1
            state.sessions[id] = live
            return live
        }
    }

    /// Forgets the pending step of `after`, which could not be recorded.
    func drop(_ id: UUID, _ after: Live) {
        state.withLock { state in
            guard var live = state.sessions[id], live.pending != nil, live.pending == after.pending else { return }
            live.pending = nil
            live.revision += 1
            state.sessions[id] = live
        }
    }

    /// Tells the session's watchers its state, and moves it to the ended ones (at `date`) when `ended`.
    ///
    /// Each watcher is given the session's state as the table holds it *now*, under the table's lock, not the state
    /// of the change that called: two changes announced at once (the helper's request for control and the
    /// machine's quick answer) then cannot reach a watcher in the wrong order and leave it showing the older one.
    /// - Returns: the watchers to finish, once the session ended (outside the lock: finishing calls back into it).
    func announce(
        _ id: UUID, ending ended: Bool, with live: Live, at date: Date
    )
        -> [AsyncStream<SessionEvent>.Continuation]
    {
        state.withLock { state in
            let watchers = Array((state.watchers[id] ?? [:]).values)
            let current = ended ? live : state.sessions[id]
            if let current {
                let snapshot = Self.snapshot(current, id: id)
                for watcher in watchers { watcher.yield(.state(snapshot)) }
            }
            guard ended else { return [] }
            state.sessions[id] = nil
            state.ended[id] = (live, date)
            state.watchers[id] = nil
            return watchers
        }
    }

    /// The session's state now and at every change, until it ends.
    func watch(_ id: UUID, seen live: Live) -> AsyncStream<SessionEvent> {
        // Chat lines must not be dropped by a slow reader as a state may (the next state says it all): room for a
        // full window of each side's lines, and states besides.
        let (stream, continuation) = AsyncStream<SessionEvent>.makeStream(
            bufferingPolicy: .bufferingNewest(2 * Self.chatLinesPerWindow + 16))
        let watcher = UUID()
        // The first state is given under the lock, as changes are (`announce`), so none can come before it.
        let watching = state.withLock { state -> Bool in
            guard let session = state.sessions[id] else { return false }
            state.watchers[id, default: [:]][watcher] = continuation
            continuation.yield(.state(Self.snapshot(session, id: id)))
            return true
        }
        if !watching {
            continuation.yield(.state(Self.snapshot(live, id: id)))
            continuation.finish()
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { $0.watchers[id]?[watcher] = nil }
        }
        return stream
    }

    // MARK: The person and chat

    /// Notes what the person's agent says of them in session `id`.
    /// - Returns: the session after, when it is live and this changed it (the caller announces it).
    func setPresence(_ presence: PersonPresence, of id: UUID) -> Live? {
        state.withLock { state in
            guard var live = state.sessions[id], live.presence != presence else { return nil }
            live.presence = presence
            live.revision += 1
            state.sessions[id] = live
            return live
        }
    }

    /// Counts a chat line by `author` in session `id` at `now`, unless that side wrote as many as it may lately.
    func admitChat(_ id: UUID, from author: ChatMessage.Author, at now: Date) -> WindowRateLimiter.Verdict {
        state.withLock { $0.chat.admit("\(id)/\(author.rawValue)", at: now) }
    }

    /// Numbers the chat line `make` builds and gives it to the session's watchers here, in one step, so watchers
    /// see the lines in the order of their numbers.
    /// - Returns: the line, or `nil` when the session is no longer live.
    func deliverChat(_ id: UUID, _ make: (Int) -> ChatMessage) -> (message: ChatMessage, live: Live)? {
        state.withLock { state in
            guard var live = state.sessions[id] else { return nil }
            // Not a change of state: copies elsewhere learn the count with the next one.
            live.chatLines += 1
            state.sessions[id] = live
            let message = make(live.chatLines)
            for watcher in (state.watchers[id] ?? [:]).values { watcher.yield(.chat(message)) }
            return (message, live)
        }
    }

    // MARK: Deadlines

    /// The live sessions whose deadline has passed at `now`.
    func due(at now: AuditTimestamp) -> [UUID] {
        state.withLock { state in
            state.sessions.filter { $0.value.latest.deadline.map { $0 <= now } ?? false }.map(\.key)
        }
    }

    /// The earliest deadline of the live sessions.
    var nextDeadline: AuditTimestamp? {
        state.withLock { state in state.sessions.values.compactMap(\.latest.deadline).min() }
    }

    /// Forgets the sessions that ended before `date`.
    func pruneEnded(before date: Date) {
        state.withLock { state in state.ended = state.ended.filter { $0.value.at >= date } }
    }
}
