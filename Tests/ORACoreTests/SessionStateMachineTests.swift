import ORACore
import Testing

@Suite("Session lifecycle: every state, every input, every deadline")
struct SessionStateMachineTests {
    typealias Machine = SessionStateMachine
    static let start = AuditTimestamp(microseconds: 1_795_340_000_000_000)

    static func seconds(_ value: Int64) -> AuditTimestamp {
        AuditTimestamp(microseconds: start.microseconds + value * 1_000_000)
    }

    /// A session of `mode` driven to `state` one second per step, offered at `start`, 60 s to answer, 2 h at most.
    static func session(in state: Machine.State, mode: AccessMode = .control) throws -> Machine {
        var machine = Machine(
            mode: mode, offeredAt: start, consentTimeout: .seconds(60), maximumDuration: .seconds(7200))
        let path: [Machine.Input]
        switch state {
        case .offered: path = []
        case .awaitingConsent: path = [.delivered]
        case .viewing: path = [.delivered, .consent(.granted)]
        case .controlRequested: path = [.delivered, .consent(.granted), .requestControl]
        case .controlling: path = [.delivered, .consent(.granted), .requestControl, .controlAnswer(.granted)]
        case .ended(let reason): path = [.delivered, .consent(.granted), .end(reason)]
        }
        for (index, input) in path.enumerated() { try machine.handle(input, at: seconds(Int64(index + 1))) }
        #expect(machine.state == state)
        return machine
    }

    enum Expected: Sendable, CustomTestStringConvertible {
        case step(Machine.State, [AuditEventType])
        case refused(SessionTransitionError.Kind)

        var testDescription: String {
            switch self {
            case .step(let state, let events): "→ \(state.name) \(events.map(\.name))"
            case .refused(let kind): "refused \(kind)"
            }
        }
    }

    static let inputs: [Machine.Input] = [
        .delivered, .consent(.granted), .consent(.declined), .requestControl, .controlAnswer(.granted),
        .controlAnswer(.declined), .stopControl(.escape), .end(.helperEnded), .end(.declined),
    ]

    /// What each input does in each state; `inputs` in order.
    static let table: [(Machine.State, [Expected])] = [
        (
            .offered,
            [
                .step(.awaitingConsent, [.offerDelivered]),
                .step(.viewing, [.offerDelivered, .consentGranted, .sessionStarted]),
                .step(.ended(.declined), [.offerDelivered, .consentDeclined, .sessionEnded]),
                .refused(.notActive), .refused(.noControlRequest), .refused(.noControlRequest),
                .refused(.controlNotGranted), .step(.ended(.helperEnded), [.sessionEnded]),
                .refused(.reasonNotApplicable(.declined)),
            ]
        ),
        (
            .awaitingConsent,
            [
                .refused(.alreadyDelivered),
                .step(.viewing, [.consentGranted, .sessionStarted]),
                .step(.ended(.declined), [.consentDeclined, .sessionEnded]),
                .refused(.notActive), .refused(.noControlRequest), .refused(.noControlRequest),
                .refused(.controlNotGranted), .step(.ended(.helperEnded), [.sessionEnded]),
                .refused(.reasonNotApplicable(.declined)),
            ]
        ),
        (
            .viewing,
            [
                .refused(.alreadyDelivered), .refused(.consentAlreadyGiven), .refused(.consentAlreadyGiven),
                .step(.controlRequested, [.controlRequested]), .refused(.noControlRequest),
                .refused(.noControlRequest), .refused(.controlNotGranted),
                .step(.ended(.helperEnded), [.sessionEnded]), .refused(.reasonNotApplicable(.declined)),
            ]
        ),
        (
            .controlRequested,
            [
                .refused(.alreadyDelivered), .refused(.consentAlreadyGiven), .refused(.consentAlreadyGiven),
                .refused(.controlAlreadyRequested), .step(.controlling, [.controlGranted]),
                .step(.viewing, [.controlDenied]), .refused(.controlNotGranted),
                .step(.ended(.helperEnded), [.sessionEnded]), .refused(.reasonNotApplicable(.declined)),
            ]
        ),
        (
            .controlling,
            [
                .refused(.alreadyDelivered), .refused(.consentAlreadyGiven), .refused(.consentAlreadyGiven),
                .refused(.controlAlreadyGranted), .refused(.noControlRequest), .refused(.noControlRequest),
                .step(.viewing, [.controlStopped]), .step(.ended(.helperEnded), [.sessionEnded]),
                .refused(.reasonNotApplicable(.declined)),
            ]
        ),
        (
            .ended(.noviceEnded),
            Array(repeating: .refused(.ended(.noviceEnded)), count: 9)
        ),
    ]

    @Test("every input in every state leads where the table says, or is refused with the right reason")
    func transitionTable() throws {
        for (state, expectations) in Self.table {
            try #require(expectations.count == Self.inputs.count)
            for (input, expected) in zip(Self.inputs, expectations) {
                var machine = try Self.session(in: state)
                let before = machine
                switch expected {
                case .step(let next, let events):
                    let step = try machine.handle(input, at: Self.seconds(30))
                    #expect(step.state == next, "\(state.name) + \(input)")
                    #expect(step.events == events, "\(state.name) + \(input)")
                    #expect(machine.state == next)
                    // Only steps that take access away (or leave none) skip the wait for their record.
                    let takesAway: Bool
                    switch (next, input) {
                    case (.ended, _), (_, .stopControl), (_, .controlAnswer(.declined)): takesAway = true
                    default: takesAway = false
                    }
                    #expect(step.reducesAccess == takesAway, "\(state.name) + \(input)")
                case .refused(let kind):
                    let error = SessionTransitionError(kind, input: input, state: state)
                    #expect(throws: error, "\(state.name) + \(input)") {
                        try machine.handle(input, at: Self.seconds(30))
                    }
                    #expect(machine == before, "a refused input changes nothing")
                }
            }
        }
    }

    @Test("a view-only session can never ask for control")
    func viewOnly() throws {
        var machine = try Self.session(in: .viewing, mode: .view)
        #expect(throws: SessionTransitionError(.controlNotPermitted, input: .requestControl, state: .viewing)) {
            try machine.handle(.requestControl, at: Self.seconds(10))
        }
        #expect(machine.state == .viewing)
        #expect(machine.controlRequests == 0)
    }

    @Test("an unanswered offer is declined at its deadline, never accepted; an answer at the deadline is too late")
    func consentTimeout() throws {
        var machine = try Self.session(in: .awaitingConsent)
        #expect(machine.deadline == Self.seconds(60))
        #expect(machine.expire(at: AuditTimestamp(microseconds: Self.seconds(60).microseconds - 1)) == nil)
        var late = machine
        #expect(throws: SessionTransitionError(.deadlinePassed, input: .consent(.granted), state: .awaitingConsent)) {
            try late.handle(.consent(.granted), at: Self.seconds(60))
        }
        #expect(late == machine)
        let expired = machine.expire(at: Self.seconds(60))
        let step = try #require(expired)
        #expect(
            step == .init(state: .ended(.consentTimeout), events: [.consentTimeout, .sessionEnded], timedOut: true))
        #expect(step.reducesAccess)
        #expect(machine.deadline == nil)
        #expect(machine.expire(at: Self.seconds(1_000)) == nil)

        // One microsecond before the deadline the answer still counts.
        var inTime = try Self.session(in: .awaitingConsent)
        let accepted = try inTime.handle(
            .consent(.granted), at: AuditTimestamp(microseconds: Self.seconds(60).microseconds - 1))
        #expect(accepted.state == .viewing)
    }

    @Test("an offer that never reached the agent times out the same way")
    func undeliveredOffer() throws {
        var machine = try Self.session(in: .offered)
        let expired = machine.expire(at: Self.seconds(61))
        let step = try #require(expired)
        #expect(step.state == .ended(.consentTimeout))
        #expect(step.events == [.consentTimeout, .sessionEnded])
    }

    @Test("an unanswered control request is denied at its deadline and the session goes on view-only")
    func controlTimeout() throws {
        var machine = try Self.session(in: .controlRequested)
        // Requested at second 3, 60 s to answer.
        #expect(machine.deadline == Self.seconds(63))
        #expect(machine.expire(at: Self.seconds(62)) == nil)
        var late = machine
        #expect(
            throws: SessionTransitionError(.deadlinePassed, input: .controlAnswer(.granted), state: .controlRequested)
        ) {
            try late.handle(.controlAnswer(.granted), at: Self.seconds(63))
        }
        let expired = machine.expire(at: Self.seconds(63))
        let step = try #require(expired)
        #expect(step == .init(state: .viewing, events: [.controlDenied], timedOut: true))
        #expect(step.reducesAccess, "a refusal by deadline is never held up by its record")
        #expect(machine.deadline == Self.seconds(2 + 7200), "back to the session's own limit")
        // A second request is a new question with a new number.
        try machine.handle(.requestControl, at: Self.seconds(100))
        #expect(machine.controlRequests == 2)
        #expect(machine.deadline == Self.seconds(160))
    }

    @Test("the maximum duration ends a session, counted from the novice's acceptance, in any active state")
    func maximumDuration() throws {
        for state in [Machine.State.viewing, .controlRequested, .controlling] {
            var machine = try Self.session(in: state)
            let end = Self.seconds(2 + 7200)  // accepted at second 2
            if state == .controlRequested {
                // Keep the control request pending until the end: ask again just before it.
                machine = try Self.session(in: .viewing)
                try machine.handle(.requestControl, at: Self.seconds(7190))
                #expect(machine.deadline == end, "a control request cannot outlive the session")
            } else {
                #expect(machine.deadline == end)
            }
            #expect(machine.expire(at: Self.seconds(7201)) == nil)
            let expired = machine.expire(at: end)
            let step = try #require(expired)
            #expect(step == .init(state: .ended(.maxDuration), events: [.sessionEnded]))
        }
    }

    @Test("ending and taking control back are always allowed, even past a deadline")
    func alwaysAllowed() throws {
        var controlling = try Self.session(in: .controlling)
        let step = try controlling.handle(.stopControl(.ctrlC), at: Self.seconds(9000))
        #expect(step.state == .viewing)
        #expect(try controlling.handle(.end(.noviceEnded), at: Self.seconds(9001)).state == .ended(.noviceEnded))

        var waiting = try Self.session(in: .awaitingConsent)
        #expect(try waiting.handle(.end(.agentDisconnected), at: Self.seconds(500)).state == .ended(.agentDisconnected))
    }

    @Test(
        "each reason that comes from outside ends a session; the others only through an answer or a deadline",
        arguments: SessionEndReason.allCases)
    func endReasons(reason: SessionEndReason) throws {
        var machine = try Self.session(in: .viewing)
        if Machine.endReasonsFromOutside.contains(reason) {
            #expect(try machine.handle(.end(reason), at: Self.seconds(10)).state == .ended(reason))
        } else {
            #expect(throws: SessionTransitionError(.reasonNotApplicable(reason), input: .end(reason), state: .viewing))
            {
                try machine.handle(.end(reason), at: Self.seconds(10))
            }
        }
        #expect(!reason.explanation.isEmpty)
    }

    @Test("no sequence of inputs without the novice's yes reaches the screen, and none without a second yes control")
    func consentCannotBeBypassed() {
        var generator = PolicyRoundTripTests.Generator(state: 0x0c0f_fee0)
        let withoutConsent = Self.inputs.filter { $0 != .consent(.granted) }
        let withoutControlConsent = Self.inputs.filter { $0 != .controlAnswer(.granted) }
        for round in 0..<2_000 {
            var first = Machine(
                mode: .control, offeredAt: Self.start, consentTimeout: .seconds(60), maximumDuration: .seconds(7200))
            var second = first
            var time = Self.start
            for _ in 0..<12 {
                time = AuditTimestamp(
                    microseconds: time.microseconds + Int64.random(in: 0...20_000_000, using: &generator))
                _ = try? first.handle(withoutConsent.randomElement(using: &generator)!, at: time)
                _ = first.expire(at: time)
                #expect(!first.state.isActive, "round \(round)")
                _ = try? second.handle(withoutControlConsent.randomElement(using: &generator)!, at: time)
                _ = second.expire(at: time)
                #expect(!second.state.hasControl, "round \(round)")
            }
        }
    }
}
