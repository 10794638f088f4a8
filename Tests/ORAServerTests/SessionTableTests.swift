import Foundation
import ORACore
import Testing

@testable import ORAServer

@Suite("The table of live sessions")
struct SessionTableTests {
    static let start = AuditTimestamp(microseconds: 1_795_340_000_000_000)

    /// A table with one session of `mode`, accepted, and its id.
    static func viewing() throws -> (SessionTable, UUID) {
        let id = UUID()
        let offer = Offer(
            session: id, machine: "ws-0101",
            helper: .init(account: "lena.wolf", dn: "uid=lena.wolf,ou=People,dc=corp,dc=example", displayName: "Lena"),
            mode: .control, ticket: nil, reason: nil, policyVersion: 1, policies: ["p"], consentTimeoutSeconds: 10,
            issuedAt: start)
        var machine = SessionStateMachine(
            mode: .control, offeredAt: start, consentTimeout: .seconds(10), maximumDuration: .seconds(3600))
        _ = try machine.handle(.consent(.granted), at: start)
        let table = SessionTable(offersPerMinute: 6)
        table.open(SessionTable.Live(offer: offer, machineKey: "key", machine: machine), id: id)
        return (table, id)
    }

    /// The states a watcher was given, once the stream holds `count` of them.
    static func states(_ stream: AsyncStream<SessionEvent>, count: Int) async -> [String] {
        var states: [String] = []
        for await event in stream {
            guard case .state(let snapshot) = event else { continue }
            states.append(snapshot.state)
            if states.count == count { break }
        }
        return states
    }

    @Test("changes announced out of order still leave a watcher on the latest state, never on an older one")
    func announcedOutOfOrder() async throws {
        let (table, id) = try Self.viewing()
        let stream = table.watch(id, seen: try #require(table.live(id)))
        // The helper asks for control and the machine answers at once; the answer is announced first.
        let requested = try #require(
            try table.update(id) { machine in try? machine.handle(.requestControl, at: Self.start) })
        let granted = try #require(
            try table.update(id) { machine in try? machine.handle(.controlAnswer(.granted), at: Self.start) })
        _ = table.announce(id, ending: false, with: granted.after, at: Date())
        _ = table.announce(id, ending: false, with: requested.after, at: Date())
        #expect(await Self.states(stream, count: 3) == ["viewing", "controlling", "controlling"])
    }

    /// Applies `input` as the broker does: a step that gives access is kept pending until recorded.
    static func step(
        _ table: SessionTable, _ id: UUID, _ input: SessionStateMachine.Input
    ) throws -> (before: SessionTable.Live, after: SessionTable.Live, step: SessionStateMachine.Step)? {
        try table.update(id, recordedFirst: { !$0.reducesAccess }) { machine in try? machine.handle(input, at: start) }
    }

    @Test("a step that gives access stays pending, and the session stands as it was, until it is settled")
    func pendingUntilSettled() throws {
        let (table, id) = try Self.viewing()
        let requested = try #require(try Self.step(table, id, .requestControl))
        #expect(table.snapshot(of: id)?.state == "viewing")
        #expect(table.snapshot(of: id)?.controlRequests == 0)
        #expect(table.live(id)?.latest.state == .controlRequested)
        // A second step that gives access waits for the first: it is refused, not stacked on an unrecorded one.
        #expect(throws: SessionError.sessionChanging) { try Self.step(table, id, .controlAnswer(.granted)) }
        let settled = try #require(table.settle(id, requested.after))
        #expect(settled.machine.state == .controlRequested)
        #expect(table.snapshot(of: id)?.state == "control_requested")
        #expect(table.settle(id, requested.after) == nil)
    }

    @Test("a pending step that cannot be recorded is dropped; one that takes access away replaces it at once")
    func pendingDroppedOrReplaced() throws {
        let (table, id) = try Self.viewing()
        let requested = try #require(try Self.step(table, id, .requestControl))
        table.drop(id, requested.after)
        #expect(table.live(id)?.pending == nil)
        #expect(table.snapshot(of: id)?.state == "viewing")

        let again = try #require(try Self.step(table, id, .requestControl))
        let ended = try #require(try Self.step(table, id, .end(.helperEnded)))
        #expect(ended.after.machine.state == .ended(.helperEnded))
        #expect(table.snapshot(of: id)?.state == "ended")
        // Recorded after the end, the request does not take effect.
        #expect(table.settle(id, again.after) == nil)
        #expect(table.snapshot(of: id)?.state == "ended")
    }

    @Test("a watcher starts with the state of the moment; the end finishes its stream")
    func startAndEnd() async throws {
        let (table, id) = try Self.viewing()
        let stream = table.watch(id, seen: try #require(table.live(id)))
        let ended = try #require(
            try table.update(id) { machine in try? machine.handle(.end(.helperEnded), at: Self.start) })
        let finished = table.announce(id, ending: true, with: ended.after, at: Date())
        #expect(finished.count == 1)
        for watcher in finished { watcher.finish() }
        var states: [String] = []
        for await event in stream {
            if case .state(let snapshot) = event { states.append(snapshot.state) }
        }
        #expect(states == ["viewing", "ended"])
        // Announced late, an older change reaches nobody, and the session stays ended.
        #expect(table.announce(id, ending: false, with: ended.before, at: Date()).isEmpty)
        #expect(table.live(id) == nil)
    }

    @Test("chat lines are numbered in order and reach every watcher between the states, none dropped")
    func chatLines() async throws {
        let (table, id) = try Self.viewing()
        let first = table.watch(id, seen: try #require(table.live(id)))
        let second = table.watch(id, seen: try #require(table.live(id)))
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        // More lines than a state stream would keep: each is delivered.
        for number in 1...(2 * SessionTable.chatLinesPerWindow) {
            let author: ChatMessage.Author = number.isMultiple(of: 2) ? .person : .helper
            let delivered = try #require(
                table.deliverChat(id) { sequence in
                    ChatMessage(sequence: sequence, from: author, name: "n", text: "line \(number)", at: at)
                })
            #expect(delivered.message.sequence == number)
        }
        #expect(table.snapshot(of: id)?.chatMessages == 2 * SessionTable.chatLinesPerWindow)
        let ended = try #require(
            try table.update(id) { machine in try? machine.handle(.end(.helperEnded), at: Self.start) })
        for watcher in table.announce(id, ending: true, with: ended.after, at: Date()) { watcher.finish() }
        for stream in [first, second] {
            var seen: [String] = []
            for await event in stream {
                switch event {
                case .state(let snapshot): seen.append(snapshot.state)
                case .chat(let message): seen.append("\(message.sequence):\(message.text)")
                }
            }
            #expect(
                seen
                    == ["viewing"] + (1...(2 * SessionTable.chatLinesPerWindow)).map { "\($0):line \($0)" } + ["ended"])
        }
        // Once ended, no line is delivered.
        #expect(
            table.deliverChat(id) { ChatMessage(sequence: $0, from: .helper, name: "n", text: "late", at: at) } == nil)
    }

    @Test("each side of a session may write its own share of lines within the window")
    func chatRate() throws {
        let (table, id) = try Self.viewing()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for _ in 0..<SessionTable.chatLinesPerWindow {
            #expect(table.admitChat(id, from: .helper, at: now) == .allowed)
        }
        #expect(
            table.admitChat(id, from: .helper, at: now)
                == .limited(recent: SessionTable.chatLinesPerWindow, retryAfter: SessionTable.chatWindow))
        #expect(table.admitChat(id, from: .person, at: now) == .allowed)
        #expect(table.admitChat(id, from: .helper, at: now + 20) == .allowed)
    }

    @Test("what the agent says of the person changes the session only when it differs")
    func presence() throws {
        let (table, id) = try Self.viewing()
        let shown = PersonPresence(window: true, typing: false)
        #expect(table.setPresence(shown, of: id)?.presence == shown)
        #expect(table.setPresence(shown, of: id) == nil)
        #expect(table.snapshot(of: id)?.person == shown)
    }
}
