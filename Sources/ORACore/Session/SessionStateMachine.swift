/// The life of one remote assistance session, from the offer to its end, as a pure value: it takes what happened
/// (the agent has the offer, the novice answered, the helper asked for control, a deadline passed) and says what
/// the session is now and which audit events record the step. It does no I/O and reads no clock; the caller passes
/// the time.
///
/// ```
/// offered ─▶ awaiting consent ─▶ viewing ⇄ control requested ─▶ controlling ─▶ viewing …
///    └──────────────┴───────────────┴──────────────┴─────────────────┴──▶ ended(reason)
/// ```
///
/// The novice's consent is the only way into `viewing`, and a separate consent the only way into `controlling`;
/// a deadline that passes without an answer is a refusal, never an acceptance.
public struct SessionStateMachine: Sendable, Hashable {
    /// Where a session is.
    public enum State: Sendable, Hashable {
        /// Recorded and being sent to the agent.
        case offered
        /// The agent has the offer and is asking the person at the machine.
        case awaitingConsent
        /// The novice accepted: the helper sees the screen, without control.
        case viewing
        /// The helper asked for control and the novice is being asked.
        case controlRequested
        /// The novice granted control: the helper's keyboard and mouse reach the machine.
        case controlling
        /// Over, for good.
        case ended(SessionEndReason)

        /// Whether the helper currently has control.
        public var hasControl: Bool { self == .controlling }

        /// Whether the novice has accepted and the session has not ended.
        public var isActive: Bool {
            switch self {
            case .viewing, .controlRequested, .controlling: true
            case .offered, .awaitingConsent, .ended: false
            }
        }

        /// The name used in the API and in the audit log.
        public var name: String {
            switch self {
            case .offered: "offered"
            case .awaitingConsent: "awaiting_consent"
            case .viewing: "viewing"
            case .controlRequested: "control_requested"
            case .controlling: "controlling"
            case .ended: "ended"
            }
        }
    }

    /// What can happen to a session.
    public enum Input: Sendable, Hashable {
        /// The agent confirmed that it has the offer and is asking the novice.
        case delivered
        /// The novice answered the offer.
        case consent(ConsentAnswer)
        /// The helper asked for control.
        case requestControl
        /// The novice answered the control request.
        case controlAnswer(ConsentAnswer)
        /// Control was taken back, by the novice or by the helper.
        case stopControl(ControlStopMethod)
        /// Someone or something ended the session. The reasons that are answers (declined, consent timeout) and
        /// the time limit come only from `.consent` and `expire(at:)`.
        case end(SessionEndReason)
    }

    /// One transition: the state it led to and the audit events that record it, in order.
    public struct Step: Sendable, Hashable {
        /// The state after the step.
        public var state: State
        /// What to record, in this order.
        public var events: [AuditEventType]
        /// Whether a control request or the offer was refused because its deadline passed.
        public var timedOut: Bool

        /// Creates a step.
        public init(state: State, events: [AuditEventType], timedOut: Bool = false) {
            self.state = state
            self.events = events
            self.timedOut = timedOut
        }

        /// Whether the step takes access away or leaves none to take: the session ended, control was stopped, or a
        /// control request was refused. Such a step takes effect at once and its events are recorded afterwards,
        /// retried until stored; every other step gives access (or asks for it) and happens only once recorded.
        public var reducesAccess: Bool {
            if case .ended = state { return true }
            return events.contains(.controlStopped) || events.contains(.controlDenied)
        }
    }

    /// The most the session may reach: `view` sessions can never request control.
    public let mode: AccessMode
    /// Where the session is now.
    public private(set) var state: State
    /// When the offer was made.
    public let offeredAt: AuditTimestamp
    /// How long the novice has to answer the offer, and each control request.
    public let consentTimeout: Duration
    /// How long an active session may last, from the novice's acceptance.
    public let maximumDuration: Duration
    /// When the novice accepted, once they have.
    public private(set) var startedAt: AuditTimestamp?
    /// When the pending control request was made, while one is.
    public private(set) var controlRequestedAt: AuditTimestamp?
    /// How many control requests the helper has made; each one's consent names its number, so an old answer
    /// cannot be replayed for a new request.
    public private(set) var controlRequests: Int
    /// When control was last taken back, and how, once it has been.
    public private(set) var lastControlStop: ControlStop?

    /// Control taken back: how, and when.
    public struct ControlStop: Sendable, Hashable {
        /// How: ESC, Ctrl+C or the button at the machine, or the helper giving it back.
        public var method: ControlStopMethod
        /// When.
        public var at: AuditTimestamp
    }

    /// A new session, just offered.
    public init(mode: AccessMode, offeredAt: AuditTimestamp, consentTimeout: Duration, maximumDuration: Duration) {
        self.mode = mode
        self.state = .offered
        self.offeredAt = offeredAt
        self.consentTimeout = consentTimeout
        self.maximumDuration = maximumDuration
        self.startedAt = nil
        self.controlRequestedAt = nil
        self.controlRequests = 0
        self.lastControlStop = nil
    }

    /// When the current state runs out by itself: the consent or control deadline, or the end of the maximum
    /// duration; `nil` once ended.
    public var deadline: AuditTimestamp? {
        switch state {
        case .offered, .awaitingConsent: offeredAt + consentTimeout
        case .controlRequested:
            min(controlRequestedAt! + consentTimeout, startedAt! + maximumDuration)
        case .viewing, .controlling: startedAt! + maximumDuration
        case .ended: nil
        }
    }

    /// Applies `input`, which happened at `time`.
    /// - Returns: the step taken.
    /// - Throws: `SessionTransitionError` when `input` makes no sense in the current state, or comes after the
    ///   deadline (`.deadlinePassed`: apply `expire(at:)`); nothing changes.
    @discardableResult
    public mutating func handle(_ input: Input, at time: AuditTimestamp) throws(SessionTransitionError) -> Step {
        if case .ended(let reason) = state { throw SessionTransitionError(.ended(reason), input: input, state: state) }
        // An answer that arrives after its deadline is not an answer: the caller applies `expire(at:)` instead.
        // Ending the session and taking control back are always allowed.
        if let deadline, time >= deadline {
            switch input {
            case .end, .stopControl: break
            default: throw SessionTransitionError(.deadlinePassed, input: input, state: state)
            }
        }
        let step: Step
        switch (state, input) {
        case (.offered, .delivered):
            step = Step(state: .awaitingConsent, events: [.offerDelivered])
        case (.offered, .consent(let answer)):
            // The answer proves the offer arrived.
            step = consentStep(answer, at: time, after: [.offerDelivered])
        case (.awaitingConsent, .consent(let answer)):
            step = consentStep(answer, at: time, after: [])
        case (.viewing, .requestControl):
            guard mode == .control else {
                throw SessionTransitionError(.controlNotPermitted, input: input, state: state)
            }
            controlRequests += 1
            controlRequestedAt = time
            step = Step(state: .controlRequested, events: [.controlRequested])
        case (.controlRequested, .controlAnswer(.granted)):
            controlRequestedAt = nil
            step = Step(state: .controlling, events: [.controlGranted])
        case (.controlRequested, .controlAnswer(.declined)):
            controlRequestedAt = nil
            step = Step(state: .viewing, events: [.controlDenied])
        case (.controlling, .stopControl(let method)):
            lastControlStop = ControlStop(method: method, at: time)
            step = Step(state: .viewing, events: [.controlStopped])
        case (_, .end(let reason)):
            guard Self.endReasonsFromOutside.contains(reason) else {
                throw SessionTransitionError(.reasonNotApplicable(reason), input: input, state: state)
            }
            controlRequestedAt = nil
            step = Step(state: .ended(reason), events: [.sessionEnded])
        default:
            throw SessionTransitionError(Self.mismatch(input, in: state), input: input, state: state)
        }
        state = step.state
        return step
    }

    /// Applies the deadline, if it has passed at `time`: an unanswered offer is declined, an unanswered control
    /// request is denied, and an active session past its maximum duration ends.
    /// - Returns: the step taken, or `nil` when nothing was due.
    public mutating func expire(at time: AuditTimestamp) -> Step? {
        guard let deadline, time >= deadline else { return nil }
        let step: Step
        switch state {
        case .offered, .awaitingConsent:
            step = Step(state: .ended(.consentTimeout), events: [.consentTimeout, .sessionEnded], timedOut: true)
        case .controlRequested where time < startedAt! + maximumDuration:
            controlRequestedAt = nil
            step = Step(state: .viewing, events: [.controlDenied], timedOut: true)
        case .viewing, .controlRequested, .controlling:
            controlRequestedAt = nil
            step = Step(state: .ended(.maxDuration), events: [.sessionEnded])
        case .ended:
            return nil
        }
        state = step.state
        return step
    }

    /// The reasons `.end` accepts; the others are reached through the novice's answer or a deadline.
    public static let endReasonsFromOutside: Set<SessionEndReason> = Set(SessionEndReason.allCases).subtracting([
        .declined, .consentTimeout, .maxDuration,
    ])

    private mutating func consentStep(_ answer: ConsentAnswer, at time: AuditTimestamp, after: [AuditEventType]) -> Step
    {
        switch answer {
        case .granted:
            startedAt = time
            return Step(state: .viewing, events: after + [.consentGranted, .sessionStarted])
        case .declined:
            return Step(state: .ended(.declined), events: after + [.consentDeclined, .sessionEnded])
        }
    }

    private static func mismatch(_ input: Input, in state: State) -> SessionTransitionError.Kind {
        switch input {
        case .delivered: .alreadyDelivered
        case .consent: .consentAlreadyGiven
        case .requestControl:
            switch state {
            case .controlRequested: .controlAlreadyRequested
            case .controlling: .controlAlreadyGranted
            default: .notActive
            }
        case .controlAnswer: .noControlRequest
        case .stopControl: .controlNotGranted
        case .end: .notActive
        }
    }
}

/// The novice's answer to an offer or a control request.
public enum ConsentAnswer: String, Sendable, Hashable, Codable, CaseIterable {
    /// Yes.
    case granted
    /// No.
    case declined
}

/// An input that makes no sense in the session's state.
public struct SessionTransitionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    public enum Kind: Sendable, Hashable {
        /// The session has ended.
        case ended(SessionEndReason)
        /// The answer or request came after the deadline.
        case deadlinePassed
        /// The offer was already delivered.
        case alreadyDelivered
        /// The novice already answered the offer.
        case consentAlreadyGiven
        /// The session's policy allows viewing only.
        case controlNotPermitted
        /// A control request is already waiting for the novice.
        case controlAlreadyRequested
        /// The helper already has control.
        case controlAlreadyGranted
        /// No control request is waiting for an answer.
        case noControlRequest
        /// The helper does not have control.
        case controlNotGranted
        /// The novice has not accepted the session yet.
        case notActive
        /// That end reason comes only from the novice's answer or a deadline.
        case reasonNotApplicable(SessionEndReason)
    }

    /// What was wrong.
    public var kind: Kind
    /// The input refused.
    public var input: SessionStateMachine.Input
    /// The session's state when it was refused.
    public var state: SessionStateMachine.State

    /// Creates an error.
    public init(_ kind: Kind, input: SessionStateMachine.Input, state: SessionStateMachine.State) {
        self.kind = kind
        self.input = input
        self.state = state
    }

    public var description: String {
        switch kind {
        case .ended(let reason): "the session has ended: \(reason.explanation)"
        case .deadlinePassed: "the answer came too late; the deadline had passed"
        case .alreadyDelivered: "the offer was already delivered"
        case .consentAlreadyGiven: "the person at the machine has already answered this offer"
        case .controlNotPermitted:
            "this session was offered for viewing only; to request control, offer again with --control (where "
                + "policy allows control)"
        case .controlAlreadyRequested: "control has already been requested and the person at the machine is deciding"
        case .controlAlreadyGranted: "the helper already has control"
        case .noControlRequest: "no control request is waiting for an answer"
        case .controlNotGranted: "the helper does not have control"
        case .notActive: "the person at the machine has not accepted the session yet"
        case .reasonNotApplicable(let reason): "a session cannot be ended as '\(reason.rawValue)' from outside"
        }
    }
}

extension AuditTimestamp {
    /// The moment `duration` after this one.
    public static func + (lhs: AuditTimestamp, rhs: Duration) -> AuditTimestamp {
        let (seconds, attoseconds) = rhs.components
        return AuditTimestamp(microseconds: lhs.microseconds + seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
    }
}
