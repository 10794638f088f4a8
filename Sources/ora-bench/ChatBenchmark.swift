import AsyncHTTPClient
import Crypto
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import ORACore
import Synchronization

/// Chat through one ora-server (the release binary): `sessions` sessions at once, each with a simulated agent that
/// accepted (a real consent receipt, signed with its device key) and a helper following the session's event
/// stream, each side writing one line a second for `seconds`. Every line goes the whole way: the helper's
/// `POST …/chat` → recorded → the agent's WebSocket; the agent's `chat` frame → recorded → the helper's stream.
/// Delivery time is taken from just before a line is sent to when the other side has read it; each side checks that
/// every line arrived, once, in the order sent.
///
/// Each session writes at its own moment within the second, as people type; `together` makes every session write at
/// the same instant instead, a burst of two lines per session each second (the worst case).
///
/// The directory needs a computer object per session and helpers enough for one event stream per session (an
/// operator may follow 16 at once): they are added to the slapd of `Deploy/dev/services` (`CHAT-0000`…, and
/// `chat-helper-00`… in Helpdesk Tier 2), once.
enum ChatBenchmark {
    /// One helper per 16 sessions: an operator follows at most 16 at once.
    static func helpersNeeded(_ sessions: Int) -> Int { (sessions + 15) / 16 }

    static func run(sessions: Int, seconds: Int, together: Bool) async throws {
        let bench = try await BenchmarkServer.start(name: "chat", offersPerMachinePerMinute: 60)
        defer { bench.stop() }
        let machines = (0..<sessions).map { String(format: "chat-%04d", $0) }
        let helpers = (0..<helpersNeeded(sessions)).map { String(format: "chat-helper-%02d", $0) }
        StreamingLoad.progress("adding \(machines.count) computers and \(helpers.count) helpers to the directory")
        try StreamingLoad.addToDirectory(machines: machines, helpers: helpers, environment: bench.environment)
        let keys = machines.map { _ in P256.Signing.PrivateKey() }
        try await AgentsBenchmark.enroll(
            names: machines, keys: keys, database: bench.database, environment: bench.environment)
        print(
            "chat benchmark: \(sessions) sessions, one line a second each way for \(seconds) s, "
                + (together ? "every session at the same instant" : "each session at its own moment"))

        // Requests on one client, the event streams (each holding a connection for the whole run) on another.
        let pool = StreamingLoad.connectionPool(for: 2 * sessions)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(connectionPool: pool))
        let streams = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(connectionPool: pool))
        do {
            try await exchange(
                sessions: sessions, seconds: seconds, together: together, machines: machines, keys: keys,
                helpers: helpers, bench: bench, http: http, streams: streams)
        } catch {
            try? await http.shutdown()
            try? await streams.shutdown()
            throw error
        }
        try await http.shutdown()
        try await streams.shutdown()
    }

    private static func exchange(
        sessions: Int, seconds: Int, together: Bool, machines: [String], keys: [P256.Signing.PrivateKey],
        helpers: [String], bench: BenchmarkServer, http: HTTPClient, streams: HTTPClient
    ) async throws {
        let lines = ChatLedger()
        let fleet = ChatFleet(url: bench.socketBase + "/agent/v1/connect", ledger: lines)
        let rawKeys = keys.map(\.rawRepresentation)
        let agents = Task {
            await withDiscardingTaskGroup { group in
                for (machine, key) in zip(machines, rawKeys) {
                    group.addTask { await fleet.run(machine, key: key) }
                    try? await Task.sleep(for: .milliseconds(2))
                }
            }
        }
        defer { agents.cancel() }
        StreamingLoad.progress("connecting \(sessions) agents")
        try await fleet.waitUntil(connected: sessions, within: .seconds(120))
        StreamingLoad.progress("offering help \(sessions) times")

        // The helpers log in; each offers help to its share of the machines, which accept at once.
        var tokens: [String] = []
        for helper in helpers { tokens.append(try await AgentsBenchmark.login(helper, base: bench.base)) }
        StreamingLoad.progress("\(helpers.count) helpers logged in")
        var offered: [(session: String, token: String)] = []
        for (index, machine) in machines.enumerated() {
            let token = tokens[index % tokens.count]
            let answer = try await post(
                http, bench.base + "/api/v1/offers", json: #"{"machine": "\#(machine)", "mode": "view"}"#, token: token)
            guard answer.status == 201, let id = StreamingLoad.field("id", in: answer.body) else {
                throw BenchmarkError("the offer to \(machine) was refused: \(answer.body)")
            }
            offered.append((id.lowercased(), token))
        }
        try await fleet.waitUntil(accepted: sessions, within: .seconds(60))
        print("\(sessions) sessions accepted")

        // The helpers' event streams, each open before any line is written.
        let opened = Counter()
        let (pairs, base) = (offered, bench.base)
        let followers = Task {
            try await StreamingLoad.eachPaced(pairs) { session, token in
                try await follow(streams, base, session: session, token: token, lines: lines, opened: opened)
            }
        }
        defer { followers.cancel() }
        try await opened.wait(for: sessions, within: .seconds(60), what: "event streams open")

        let started = ContinuousClock.now
        let cpuBefore = try processTicks(bench.server.pid)
        try await withThrowingDiscardingTaskGroup { group in
            for (session, token) in offered {
                group.addTask {
                    // Each session at its own moment within the second (unless together), then one line a second
                    // from each side.
                    let phase = started + .milliseconds(together ? 1000 : Int.random(in: 0..<1000))
                    try await Task.sleep(until: phase)
                    for number in 1...seconds {
                        let next = phase + .seconds(1) * number
                        lines.sent(session: session, from: .helper, number: number)
                        let posted = ContinuousClock.now
                        let answer = try await post(
                            http, bench.base + "/api/v1/sessions/\(session)/chat", json: #"{"text": "h \#(number)"}"#,
                            token: token)
                        lines.answered(after: ContinuousClock.now - posted)
                        if answer.status != 201 { lines.refused(answer.body) }
                        await fleet.say("p \(number)", in: session, number: number)
                        try await Task.sleep(until: next)
                    }
                }
            }
        }
        // The last lines may still be on their way; what has not come within 5 seconds is lost.
        let waiting = ContinuousClock.now + .seconds(5)
        while lines.onTheirWay > 0, ContinuousClock.now < waiting { try await Task.sleep(for: .milliseconds(20)) }
        let elapsed = ContinuousClock.now - started
        let cpu = try processTicks(bench.server.pid) - cpuBefore
        let report = lines.report()
        ConsoleBenchmark.report("helper → person (POST to the agent's reading it)", report.helperToPerson)
        ConsoleBenchmark.report("person → helper (the agent's frame to the event stream's line)", report.personToHelper)
        ConsoleBenchmark.report("the helper's POST, answered", report.answers)
        print(
            "lines: \(report.delivered) delivered of \(2 * sessions * seconds) sent; lost \(report.lost), "
                + "out of order \(report.reordered), twice \(report.duplicated), refused \(report.refused)")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        print(
            String(
                format: "server CPU: %.1f s over %.1f s (%.0f %% of one core) for %.0f lines a second",
                Double(cpu) / ticks, elapsed.seconds, Double(cpu) / ticks / elapsed.seconds * 100,
                Double(report.delivered) / elapsed.seconds))
        let recorded = try bench.environment.query(
            "SELECT count(*) FROM audit_events WHERE event = 'chat.message'", database: bench.database)
        print("chat.message events recorded: \(recorded)")
    }

    /// Reads the session's event stream, noting each of the person's lines, until cancelled.
    static func follow(
        _ http: HTTPClient, _ base: String, session: String, token: String, lines: ChatLedger, opened: Counter
    ) async throws {
        try await StreamingLoad.readEvents(
            http, base + "/api/v1/sessions/\(session)/events", token: token, opened: opened
        ) {
            name, data in
            guard name == "chat", let text = StreamingLoad.field("text", in: data), text.hasPrefix("p "),
                let number = Int(text.dropFirst(2))
            else { return }
            lines.received(session: session, from: .person, number: number)
        }
    }

    static func post(
        _ http: HTTPClient, _ url: String, json: String, token: String
    ) async throws -> (status: UInt, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (UInt(response.status.code), String(buffer: body))
    }

    /// The CPU time of process `pid` so far, in clock ticks.
    static func processTicks(_ pid: pid_t) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

}

/// A count several tasks add to, and one waits for; the first failure of one of them ends the wait with its reason.
final class Counter: Sendable {
    private let value = Mutex(0)
    private let failure = Mutex<String?>(nil)

    func increment() { value.withLock { $0 += 1 } }

    /// One of the tasks failed, for `reason`: the wait ends with the first such reason.
    func fail(_ reason: String) { failure.withLock { $0 = $0 ?? reason } }

    func wait(for count: Int, within limit: Duration, what: String) async throws {
        let deadline = ContinuousClock.now + limit
        while value.withLock({ $0 }) < count {
            if let reason = failure.withLock({ $0 }) { throw BenchmarkError(reason) }
            guard ContinuousClock.now < deadline else {
                throw BenchmarkError("only \(value.withLock { $0 }) of \(count) \(what) within \(limit)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// When each line was sent and read, by session, side and number; what arrived twice, late or out of order.
final class ChatLedger: Sendable {
    private struct Key: Hashable {
        var session: String
        var from: ChatMessage.Author
        var number: Int
    }

    private struct State {
        var sent: [Key: ContinuousClock.Instant] = [:]
        var latencies: [ChatMessage.Author: [Duration]] = [:]
        var lastNumber: [String: Int] = [:]
        var delivered = 0
        var reordered = 0
        var duplicated = 0
        var refused: [String] = []
        var answers: [Duration] = []
    }

    private let state = Mutex(State())

    func sent(session: String, from author: ChatMessage.Author, number: Int) {
        let now = ContinuousClock.now
        state.withLock { $0.sent[Key(session: session, from: author, number: number)] = now }
    }

    func received(session: String, from author: ChatMessage.Author, number: Int) {
        let now = ContinuousClock.now
        state.withLock { state in
            guard let sent = state.sent.removeValue(forKey: Key(session: session, from: author, number: number))
            else {
                state.duplicated += 1
                return
            }
            state.latencies[author, default: []].append(now - sent)
            state.delivered += 1
            let side = "\(session)/\(author.rawValue)"
            if number <= state.lastNumber[side, default: 0] { state.reordered += 1 }
            state.lastNumber[side] = number
        }
    }

    /// The helper's POST took `time` to be answered.
    func answered(after time: Duration) {
        state.withLock { $0.answers.append(time) }
    }

    /// How many lines were sent and not read yet.
    var onTheirWay: Int { state.withLock { $0.sent.count } }

    func refused(_ body: String) {
        state.withLock { $0.refused.append(body) }
    }

    struct Report {
        var helperToPerson: [Duration]
        var personToHelper: [Duration]
        var delivered: Int
        var lost: Int
        var reordered: Int
        var duplicated: Int
        var refused: Int
        var answers: [Duration]
    }

    func report() -> Report {
        state.withLock { state in
            if let first = state.refused.first { print("first refusal: \(first)") }
            return Report(
                helperToPerson: state.latencies[.helper] ?? [], personToHelper: state.latencies[.person] ?? [],
                delivered: state.delivered, lost: state.sent.count, reordered: state.reordered,
                duplicated: state.duplicated, refused: state.refused.count, answers: state.answers)
        }
    }
}

/// The simulated agents of the chat benchmark: each accepts its offer with a signed receipt, notes the helper's
/// lines as they arrive, and writes its own when asked.
final class ChatFleet: Sendable {
    private struct State {
        var connected = 0
        var accepted = 0
        /// Where each session's agent writes.
        var links: [String: WebSocketOutboundWriter] = [:]
    }

    private let url: String
    private let ledger: ChatLedger
    private let state = Mutex(State())
    private let logger = Logger.quiet("ora-bench-agent")

    init(url: String, ledger: ChatLedger) {
        self.url = url
        self.ledger = ledger
    }

    /// Keeps `machine` connected, with `key` (the raw P-256 private key), until cancelled.
    func run(_ machine: String, key: Data) async {
        _ = try? await WebSocketClient.connect(
            url: url, configuration: .init(maxFrameSize: AgentProtocol.maximumFrameSize), logger: logger
        ) { inbound, outbound, _ in
            let signing = try P256.Signing.PrivateKey(rawRepresentation: key)
            var link = SimulatedAgentLink(inbound: inbound, outbound: outbound)
            guard try await link.authenticate(machine, key: signing, server: "127.0.0.1") else { return }
            self.state.withLock { $0.connected += 1 }
            while let message = try await link.next() {
                switch message {
                case .offer(let offer):
                    try await link.send(.offerReceived(session: offer.session))
                    let receipt = try ConsentReceipt(
                        answering: .session, request: 0, of: offer, answer: .granted, at: AuditTimestamp(Date()),
                        signingWith: signing)
                    let session = offer.session.uuidString.lowercased()
                    self.state.withLock {
                        $0.links[session] = outbound
                        $0.accepted += 1
                    }
                    try await link.send(.consent(receipt))
                case .chat(let id, let line) where line.from == .helper:
                    if line.text.hasPrefix("h "), let number = Int(line.text.dropFirst(2)) {
                        self.ledger.received(session: id.uuidString.lowercased(), from: .helper, number: number)
                    }
                default:
                    continue
                }
            }
        }
    }

    /// The person at the machine of `session` writes `text`, the `number`-th line.
    func say(_ text: String, in session: String, number: Int) async {
        guard let outbound = state.withLock({ $0.links[session] }), let id = UUID(uuidString: session) else { return }
        ledger.sent(session: session, from: .person, number: number)
        let frame = String(decoding: AgentProtocol.encode(.chat(session: id, text: text)), as: UTF8.self)
        try? await outbound.write(.text(frame))
    }

    func waitUntil(connected count: Int, within limit: Duration) async throws {
        try await waitUntil("connected", count, within: limit) { $0.connected }
    }

    func waitUntil(accepted count: Int, within limit: Duration) async throws {
        try await waitUntil("accepted", count, within: limit) { $0.accepted }
    }

    private func waitUntil(
        _ what: String, _ count: Int, within limit: Duration, _ value: (State) -> Int
    ) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if state.withLock({ value($0) }) >= count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkError("only \(state.withLock { value($0) }) of \(count) agents \(what) within \(limit)")
    }
}
