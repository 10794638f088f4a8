import NIOCore
import Synchronization

/// A connection that is pinged by its event loop's `AgentPingRound`.
protocol AgentPinged: AnyObject {
    /// Called on the connection's event loop once per ping interval.
    func pingDue()
}

/// The pings of the agents connected on one event loop. Rather than a timer for each connection, one timer ticks
/// every `tick` and pings the connections of one slot: the interval is cut into slots, and a connection joins the
/// slot that was ticked last, so it is first pinged a whole interval after it joined, then once every interval.
/// The pings of an interval are spread over it, a few at each tick. The timer runs only while the round has
/// connections. Confined to its event loop: used only there.
///
/// With a timer each, keeping 19,000 timers in order was most of what 19,000 idle agents cost: 9.0–9.8 % of a core
/// and 7.7–7.8 KB per agent, against 5.0–5.8 % and 6.8–7.0 KB with the rounds (Docs/Scale.md).
final class AgentPingRound {
    /// How often the round ticks.
    static let tick = TimeAmount.milliseconds(100)

    private let eventLoop: any EventLoop
    private var slots: [[ObjectIdentifier: any AgentPinged]]
    /// The slot the next tick pings.
    private var next = 0
    private var members = 0
    private var ticker: RepeatedTask?

    /// A round on `eventLoop` that pings each of its connections every `interval` (to the nearest tick).
    init(eventLoop: any EventLoop, interval: TimeAmount) {
        self.eventLoop = eventLoop
        let count = max(1, Int((interval.nanoseconds + Self.tick.nanoseconds / 2) / Self.tick.nanoseconds))
        slots = Array(repeating: [:], count: count)
    }

    /// Adds `connection`, first pinged one interval from now; returns its slot, for `leave`.
    func join(_ connection: any AgentPinged) -> Int {
        eventLoop.assertInEventLoop()
        let slot = (next + slots.count - 1) % slots.count
        if slots[slot].updateValue(connection, forKey: ObjectIdentifier(connection)) == nil { members += 1 }
        if ticker == nil {
            let round = NIOLoopBound(self, eventLoop: eventLoop)
            ticker = eventLoop.scheduleRepeatedTask(initialDelay: Self.tick, delay: Self.tick) { _ in
                round.value.pingNextSlot()
            }
        }
        return slot
    }

    /// Removes `connection` from `slot`; nothing when it is not there.
    func leave(_ connection: any AgentPinged, slot: Int) {
        eventLoop.assertInEventLoop()
        guard slots[slot].removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        members -= 1
        if members == 0 {
            ticker?.cancel()
            ticker = nil
        }
    }

    /// How many connections the round pings.
    var count: Int { members }

    private func pingNextSlot() {
        let due = slots[next]
        next = (next + 1) % slots.count
        // A connection that closes as it is pinged leaves its slot meanwhile; the copy still pings it, which a
        // closing connection ignores.
        for connection in due.values { connection.pingDue() }
    }
}

/// The ping rounds of the event loops agents are connected on, made as agents first connect on each.
final class AgentPings: Sendable {
    private let interval: TimeAmount
    private let rounds = Mutex<[ObjectIdentifier: NIOLoopBound<AgentPingRound>]>([:])

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// The round of `eventLoop`; called on it.
    func round(on eventLoop: any EventLoop) -> AgentPingRound {
        let bound = rounds.withLock { rounds in
            if let round = rounds[ObjectIdentifier(eventLoop)] { return round }
            let round = NIOLoopBound(AgentPingRound(eventLoop: eventLoop, interval: interval), eventLoop: eventLoop)
            rounds[ObjectIdentifier(eventLoop)] = round
            return round
        }
        return bound.value
    }
}
