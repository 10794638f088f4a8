import NIOCore
import NIOEmbedded
import Testing

@testable import ORAServer

/// The pings of one event loop's agents, on a testing event loop whose clock the tests move: each connection once an
/// interval, the first a whole interval after it joined, none after it left.
@Suite("Agent pings")
struct AgentPingRoundTests {
    /// A connection that counts its pings and when they came.
    final class Connection: AgentPinged {
        private let loop: EmbeddedEventLoop
        private(set) var pinged: [Int64] = []

        init(_ loop: EmbeddedEventLoop) {
            self.loop = loop
        }

        func pingDue() {
            pinged.append(Int64(loop.now.uptimeNanoseconds / 1_000_000))
        }
    }

    @Test("each connection is pinged once an interval, first a whole interval after it joined")
    func onceAnInterval() {
        let loop = EmbeddedEventLoop()
        let round = AgentPingRound(eventLoop: loop, interval: .seconds(1))
        let first = Connection(loop)
        _ = round.join(first)
        loop.advanceTime(by: .milliseconds(550))
        let second = Connection(loop)
        _ = round.join(second)
        #expect(first.pinged.isEmpty)

        loop.advanceTime(by: .milliseconds(350))
        #expect(first.pinged.isEmpty, "not before its interval")
        loop.advanceTime(by: .milliseconds(100))
        #expect(first.pinged == [1000])
        loop.advanceTime(by: .milliseconds(3000))
        #expect(first.pinged == [1000, 2000, 3000, 4000])
        // Joined at 550 ms, between two ticks: first pinged at the tick 950 ms later, never later than an interval.
        #expect(second.pinged == [1500, 2500, 3500])
        #expect(round.count == 2)
    }

    @Test("a connection that left is not pinged; the others are, and a round emptied starts again when one joins")
    func leaving() {
        let loop = EmbeddedEventLoop()
        let round = AgentPingRound(eventLoop: loop, interval: .seconds(2))
        let staying = Connection(loop)
        let leaving = Connection(loop)
        let stayingSlot = round.join(staying)
        let leavingSlot = round.join(leaving)
        loop.advanceTime(by: .seconds(2))
        #expect(leaving.pinged == [2000])
        round.leave(leaving, slot: leavingSlot)
        round.leave(leaving, slot: leavingSlot)
        #expect(round.count == 1, "leaving twice counts once")
        loop.advanceTime(by: .seconds(4))
        #expect(leaving.pinged == [2000])
        #expect(staying.pinged == [2000, 4000, 6000])

        round.leave(staying, slot: stayingSlot)
        #expect(round.count == 0)
        loop.advanceTime(by: .seconds(4))
        #expect(staying.pinged == [2000, 4000, 6000])

        let late = Connection(loop)
        _ = round.join(late)
        loop.advanceTime(by: .seconds(2))
        #expect(late.pinged == [12000])
    }

    @Test("a thousand connections joining over an interval are each pinged once in every interval, a few at a tick")
    func spread() {
        let loop = EmbeddedEventLoop()
        let round = AgentPingRound(eventLoop: loop, interval: .seconds(30))
        var connections: [(joined: Int64, connection: Connection)] = []
        for _ in 0..<1000 {
            let connection = Connection(loop)
            _ = round.join(connection)
            connections.append((Int64(loop.now.uptimeNanoseconds / 1_000_000), connection))
            loop.advanceTime(by: .milliseconds(30))
        }
        loop.advanceTime(by: .seconds(90))
        for (joined, connection) in connections {
            let pinged = connection.pinged
            #expect(pinged.count >= 3)
            #expect((joined + 29_900...joined + 30_000).contains(pinged.first ?? 0), "joined at \(joined): \(pinged)")
            #expect(zip(pinged, pinged.dropFirst()).allSatisfy { $1 - $0 == 30_000 }, "\(pinged)")
        }
        // At no tick more than the connections of one slot: the thousand over 300 slots.
        let perTick = Dictionary(grouping: connections.flatMap(\.connection.pinged), by: { $0 }).values.map(\.count)
        #expect(perTick.max() ?? 0 <= 4)
    }

    @Test("an interval shorter than a tick pings at every tick")
    func shortInterval() {
        let loop = EmbeddedEventLoop()
        let round = AgentPingRound(eventLoop: loop, interval: .milliseconds(40))
        let connection = Connection(loop)
        _ = round.join(connection)
        loop.advanceTime(by: .milliseconds(300))
        #expect(connection.pinged == [100, 200, 300])
    }
}
