import AsyncHTTPClient
import Crypto
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import ORAAgent
import ORAClient
import ORACore
import Synchronization

/// Faults under load. Two replicas of the release `ora-server` on one fresh database, `count` simulated agents
/// (real keys, the real protocol, consenting to everything) spread over both, helpers offering help, asking for
/// control and ending sessions through either replica, and operators logging in and out — while, one after another:
/// PostgreSQL restarts, slapd freezes (SIGSTOP) and thaws, slapd restarts, one replica is killed (SIGKILL) and started
/// again, and every agent connection to the other replica is cut (`ss -K`: the kernel resets them).
///
/// Afterwards it checks the record against what the clients were told:
/// * every acknowledged offer has exactly one `offer.requested` and, once everything has ended, one `session.ended`;
///   every acknowledged end one `session.ended`; every control seen granted one `control.granted`;
/// * no event is stored twice, and no session has two of one step;
/// * no session is left active, and every session the database knows has its `offer.requested`, every
///   `session.started` its `consent.granted`, every stored operator session its `operator.login`;
/// * the audit chain verifies.
enum FaultsBenchmark {
    static func run(count: Int, seconds: Int) async throws {
        let services = try Services()
        let bench = try await BenchmarkServer.start(
            name: "faults", offersPerMachinePerMinute: 600, access: .control, journal: true)
        let (environment, database) = (bench.environment, bench.database)
        let (second, secondBase) = try bench.replica(2)
        try second.start()
        try await AgentsBenchmark.waitUntilServing(secondBase, server: second)
        let bases = [bench.base, secondBase]
        print("faults benchmark: \(count) agents over 2 replicas, \(seconds) s of load, database \(database)")

        let names = (0..<count).map { String(format: "fault-%05d", $0) }
        try RelayBenchmark.addComputers(names, environment: environment)
        defer {
            RelayBenchmark.removeComputers(names, environment: environment)
            second.stop()
            bench.stop()
        }
        let keys = names.map { _ in P256.Signing.PrivateKey() }
        try await AgentsBenchmark.enroll(names: names, keys: keys, database: database, environment: environment)

        let agents = FaultAgents(
            server: "127.0.0.1", urls: bases.map { $0.replacingOccurrences(of: "http", with: "ws") })
        let fleet = Task {
            await withDiscardingTaskGroup { group in
                for (index, (name, key)) in zip(names, keys).enumerated() {
                    let key = key.rawRepresentation
                    group.addTask { await agents.keepConnected(name, key: key, first: index % 2) }
                    try? await Task.sleep(for: .microseconds(500))
                }
            }
        }
        defer { fleet.cancel() }
        try await agents.waitUntil(connected: count, within: .seconds(300))
        print("\(count) agents connected")

        // Helpers: 16, each offering to its own 8 machines in turn, so that they never find a machine busy with
        // another helper's session.
        let ledger = Ledger()
        let stop = Shared(false)
        let started = ContinuousClock.now
        let helpers = 16
        let targets = Array(names.prefix(helpers * 8))
        let load = Task {
            await withDiscardingTaskGroup { group in
                for helper in 0..<helpers {
                    let mine = targets.enumerated().filter { $0.offset % helpers == helper }.map(\.element)
                    group.addTask {
                        await HelperLoop(bases: bases, machines: mine, ledger: ledger).run {
                            stop.value.withLock { $0 }
                        }
                    }
                }
                for worker in 0..<2 {
                    group.addTask {
                        await LoginLoop(bases: bases, worker: worker, ledger: ledger).run { stop.value.withLock { $0 } }
                    }
                }
            }
        }

        // The faults, at fixed points of the load.
        func at(_ fraction: Double) async throws {
            let due = started + .milliseconds(Int(Double(seconds) * fraction * 1000))
            try await Task.sleep(until: due, clock: .continuous)
        }
        func note(_ text: String) {
            print(String(format: "%6.1f s  %@", (ContinuousClock.now - started).seconds, text))
        }
        func restart(_ service: String, _ name: String) throws {
            note("\(name) restarting")
            try services.run("down", service)
            try services.run("up", service)
            note("\(name) running again")
        }
        try await at(0.1)
        try restart("postgres", "PostgreSQL")
        try await at(0.25)
        let slapd = try services.slapdProcess()
        kill(slapd, SIGSTOP)
        note("slapd frozen (SIGSTOP)")
        try await Task.sleep(for: .seconds(15))
        kill(slapd, SIGCONT)
        note("slapd thawed (SIGCONT)")
        try await at(0.45)
        try restart("slapd", "slapd")
        try await at(0.6)
        kill(second.pid, SIGKILL)
        note("replica 2 killed (SIGKILL)")
        try await Task.sleep(for: .seconds(15))
        try second.start()
        try await AgentsBenchmark.waitUntilServing(secondBase, server: second)
        note("replica 2 serving again")
        try await at(0.8)
        let cut = try services.cutConnections(toPort: URL(string: bench.base)!.port!)
        note("\(cut) agent connections to replica 1 cut (ss -K)")
        try await at(1)
        stop.value.withLock { $0 = true }
        note("load stopped; the helpers end what they hold")
        await load.value
        note("every helper done")
        try await agents.waitUntil(connected: count, within: .seconds(300))
        note("all \(count) agents connected again")

        // Sessions of the killed replica are ended by the other once its heartbeat is older than the liveness
        // window; then the journals must have delivered everything.
        let checks = Checks(environment: environment, database: database, ledger: ledger.snapshot)
        var report = try checks.run()
        let deadline = ContinuousClock.now + .seconds(240)
        while !report.clean, ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(2))
            report = try checks.run()
        }
        note(report.clean ? "the record is complete" : "the record is NOT complete after waiting 240 s")

        let auditor = try await AgentsBenchmark.login("sara.klein", base: bench.base)
        let intact = try await AgentsBenchmark.client(bench.base, token: auditor).verifyAudit().ok.body.json.intact
        print(report.text(ledger: ledger.snapshot, agents: agents.reconnections, verified: intact))
        if !report.clean || !intact { throw BenchmarkError("the record does not match what was acknowledged") }
    }
}

// MARK: - What the clients were told

/// What the servers acknowledged to the helpers and operators, and what they refused.
final class Ledger: Sendable {
    struct Entries: Sendable {
        /// Sessions whose offer was answered 201.
        var offered: [UUID] = []
        /// Sessions whose end was answered 200.
        var ended: [UUID] = []
        /// Sessions whose end was answered 409: they had ended already.
        var endedBefore: [UUID] = []
        /// Sessions whose control request was answered 200.
        var controlRequested: [UUID] = []
        /// Sessions the helper saw in `controlling`.
        var controlled: [UUID] = []
        var logins = 0
        var logouts = 0
        /// Answers other than the expected one, by request and status (0: no answer).
        var refusals: [String: Int] = [:]
    }

    private let entries = Mutex(Entries())

    var snapshot: Entries { entries.withLock { $0 } }

    func note(_ change: (inout Entries) -> Void) { entries.withLock { change(&$0) } }

    func refused(_ request: String, status: Int) {
        entries.withLock { $0.refusals["\(request) \(status == 0 ? "no answer" : String(status))", default: 0] += 1 }
    }
}

/// One HTTP request to a replica: the status (0 when no answer came) and the body.
private func send(
    _ method: String, _ url: String, body: String? = nil, token: String? = nil
) async -> (status: Int, body: Data) {
    var request = HTTPClientRequest(url: url)
    request.method = .init(rawValue: method)
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    do {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
        let data = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
        return (Int(response.status.code), data)
    } catch {
        return (0, Data())
    }
}

/// `data` as `type` of the API, or `nil` when it is not one.
private func decoded<Value: Decodable>(_ type: Value.Type, from data: Data) -> Value? {
    try? JSONDecoder.oraAPI().decode(type, from: data)
}

/// A helper: offers control sessions to its machines one after another, through either replica (the other one
/// when a request gets no answer, as behind a load balancer), waits for the person's consent, asks for control,
/// holds the session a moment, and ends it — retrying the end until a replica acknowledges it.
private struct HelperLoop {
    let bases: [String]
    let machines: [String]
    let ledger: Ledger

    func run(until stopped: @Sendable () -> Bool) async {
        var token: String?
        var turn = 0
        while !stopped() {
            turn += 1
            let base = bases[turn % bases.count]
            guard let current = token else {
                token = await login(base)
                if token == nil { try? await Task.sleep(for: .milliseconds(500)) }
                continue
            }
            let machine = machines[turn % machines.count]
            let answer = await send(
                "POST", base + "/api/v1/offers",
                body: #"{"machine": "\#(machine)", "mode": "control", "reason": "faults benchmark"}"#,
                token: current)
            guard answer.status == 201, let text = decoded(Components.Schemas.Session.self, from: answer.body)?.id,
                let id = UUID(uuidString: text)
            else {
                ledger.refused("offer", status: answer.status)
                if answer.status == 401 { token = nil }
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            ledger.note { $0.offered.append(id) }
            if await waitFor(["viewing"], of: id, token: current) == "viewing" {
                let control = await send(
                    "POST", bases[turn % bases.count] + "/api/v1/sessions/\(id)/control", token: current)
                if control.status == 200 {
                    ledger.note { $0.controlRequested.append(id) }
                    if await waitFor(["controlling"], of: id, token: current) == "controlling" {
                        ledger.note { $0.controlled.append(id) }
                    }
                } else {
                    ledger.refused("control", status: control.status)
                }
            }
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...500)))
            await end(id, token: current)
        }
    }

    private func login(_ base: String) async -> String? {
        let answer = await send("POST", base + "/api/v1/login", body: #"{"user": "lena.wolf", "password": "ora-demo"}"#)
        guard answer.status == 200, let token = decoded(Components.Schemas.LoginResult.self, from: answer.body)?.token
        else {
            ledger.refused("helper login", status: answer.status)
            return nil
        }
        return token
    }

    /// Polls the session until its state is one of `states` or `ended`, for up to 10 seconds.
    private func waitFor(_ states: Set<String>, of id: UUID, token: String) async -> String? {
        let deadline = ContinuousClock.now + .seconds(10)
        var turn = 0
        while ContinuousClock.now < deadline {
            turn += 1
            let answer = await send("GET", bases[turn % bases.count] + "/api/v1/sessions/\(id)", token: token)
            if answer.status == 200,
                let state = decoded(Components.Schemas.Session.self, from: answer.body)?.state.rawValue
            {
                if states.contains(state) || state == "ended" { return state }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// Ends the session, through one replica and then the other, until one acknowledges or answers that it has ended
    /// (for two minutes at most).
    private func end(_ id: UUID, token: String) async {
        let deadline = ContinuousClock.now + .seconds(120)
        var turn = 0
        while ContinuousClock.now < deadline {
            turn += 1
            let answer = await send("DELETE", bases[turn % bases.count] + "/api/v1/sessions/\(id)", token: token)
            if answer.status == 200 {
                ledger.note { $0.ended.append(id) }
                return
            }
            if answer.status == 409 {
                // It ended already: by the person, the agent's going, a replica's crash, or an end of ours whose
                // answer was lost.
                ledger.note { $0.endedBefore.append(id) }
                return
            }
            ledger.refused("end", status: answer.status)
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}

/// An operator logging in and out again and again, through either replica.
private struct LoginLoop {
    let bases: [String]
    let worker: Int
    let ledger: Ledger

    func run(until stopped: @Sendable () -> Bool) async {
        let users = ["hannah.fischer", "tom.berger", "omar.haddad", "sara.klein"]
        var turn = worker
        while !stopped() {
            turn += 1
            let base = bases[turn % bases.count]
            let user = users[turn % users.count]
            let login = await send(
                "POST", base + "/api/v1/login", body: #"{"user": "\#(user)", "password": "ora-demo"}"#)
            guard login.status == 200, let token = decoded(Components.Schemas.LoginResult.self, from: login.body)?.token
            else {
                ledger.refused("login", status: login.status)
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            ledger.note { $0.logins += 1 }
            let logout = await send("POST", bases[(turn + 1) % bases.count] + "/api/v1/logout", token: token)
            if logout.status == 200 || logout.status == 204 {
                ledger.note { $0.logouts += 1 }
            } else {
                ledger.refused("logout", status: logout.status)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

// MARK: - The agents

/// Simulated agents that consent to every offer and control request. Each reconnects with the agent's back-off,
/// to the other replica after a failure, as behind a load balancer.
final class FaultAgents: Sendable {
    let server: String
    let urls: [String]
    private let counts = Mutex((connected: 0, reconnections: 0))
    private let logger = Logger.quiet("ora-bench-agent")

    init(server: String, urls: [String]) {
        self.server = server
        self.urls = urls
    }

    /// How many times an agent connected again after its first connection.
    var reconnections: Int { counts.withLock { $0.reconnections } }

    func keepConnected(_ machine: String, key: Data, first: Int) async {
        var failures = 0
        var attempt = first
        let connections = Shared(0)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            _ = try? await WebSocketClient.connect(
                url: urls[attempt % urls.count] + "/agent/v1/connect",
                configuration: .init(maxFrameSize: AgentProtocol.maximumFrameSize), logger: logger
            ) { inbound, outbound, _ in
                let number = connections.value.withLock { count in
                    count += 1
                    return count
                }
                if number > 1 { self.counts.withLock { $0.reconnections += 1 } }
                try await self.converse(machine, key: key, inbound: inbound, outbound: outbound)
            }
            if ContinuousClock.now - started > .seconds(30) { failures = 0 }
            failures += 1
            attempt += 1
            guard (try? await Task.sleep(for: AgentRunner.backOff(after: failures))) != nil else { return }
        }
    }

    private func converse(
        _ machine: String, key: Data, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter
    ) async throws {
        let signingKey = try P256.Signing.PrivateKey(rawRepresentation: key)
        var link = SimulatedAgentLink(inbound: inbound, outbound: outbound)
        guard try await link.authenticate(machine, key: signingKey, server: server) else { return }
        counts.withLock { $0.connected += 1 }
        defer { counts.withLock { $0.connected -= 1 } }
        var offers: [UUID: Offer] = [:]
        while let message = try await link.next() {
            switch message {
            case .offer(let offer):
                offers[offer.session] = offer
                try await link.send(.offerReceived(session: offer.session))
                try await link.send(
                    .consent(
                        try ConsentReceipt(
                            answering: .session, request: 0, of: offer, answer: .granted, at: AuditTimestamp(Date()),
                            signingWith: signingKey)))
            case .controlRequest(let session, let request):
                guard let offer = offers[session] else { continue }
                try await link.send(
                    .consent(
                        try ConsentReceipt(
                            answering: .control, request: request, of: offer, answer: .granted,
                            at: AuditTimestamp(Date()),
                            signingWith: signingKey)))
            case .endSession(let session, _):
                offers[session] = nil
            default:
                continue
            }
        }
    }

    func waitUntil(connected count: Int, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if counts.withLock({ $0.connected }) >= count { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchmarkError("only \(counts.withLock { $0.connected }) of \(count) agents connected within \(limit)")
    }
}

// MARK: - The services

/// `Deploy/dev/services` for the state directory of the environment, and what the faults do to its processes.
private struct Services {
    let script: String
    let state: String

    init() throws {
        let script = FileManager.default.currentDirectoryPath + "/Deploy/dev/services"
        guard FileManager.default.isExecutableFile(atPath: script) else {
            throw BenchmarkError("run ora-bench faults from the package root: it restarts the services with \(script)")
        }
        self.script = script
        self.state = BenchmarkEnvironment().setting("ORA_STATE_DIR")
    }

    func run(_ command: String, _ service: String) throws {
        try Self.execute(script, [command, "--state", state, "--only", service])
    }

    func slapdProcess() throws -> pid_t {
        let text = try String(contentsOfFile: state + "/slapd/slapd.pid", encoding: .utf8)
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw BenchmarkError("no slapd pid in \(state)/slapd/slapd.pid")
        }
        return pid
    }

    /// Resets every established connection to `port` from the clients' side (the server sees a reset), and returns
    /// how many there were.
    func cutConnections(toPort port: Int) throws -> Int {
        let filter = ["dst", "127.0.0.1", "dport", "=", ":\(port)"]
        let before = try Self.execute("/usr/bin/ss", ["-H", "-t", "state", "established"] + filter)
        // ss reports an error for the sockets it lists but cannot destroy (the listening side's), and resets the rest.
        _ = try? Self.execute("/usr/bin/ss", ["-K", "-t", "state", "established"] + filter)
        return before.split(separator: "\n").count
    }

    @discardableResult
    static func execute(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchmarkError("\(tool) \(arguments.joined(separator: " ")) failed")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

// MARK: - The checks

private struct Checks {
    let environment: BenchmarkEnvironment
    let database: String
    let ledger: Ledger.Entries

    struct Report {
        /// Each check's name and the number of cases that break it.
        var broken: [(String, Int)]
        var endReasons: String
        var totals: String

        var clean: Bool { broken.allSatisfy { $0.1 == 0 } }

        func text(ledger: Ledger.Entries, agents reconnections: Int, verified: Bool) -> String {
            var lines = [
                "",
                "acknowledged: \(ledger.offered.count) offers, \(ledger.controlRequested.count) control requests "
                    + "(\(ledger.controlled.count) seen granted), \(ledger.ended.count) ends (and "
                    + "\(ledger.endedBefore.count) found ended already), \(ledger.logins) logins, "
                    + "\(ledger.logouts) logouts",
                "not acknowledged (request and status): "
                    + ledger.refusals.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                    .joined(separator: ", "),
                "agents reconnected \(reconnections) times",
                "stored: \(totals)",
                "sessions ended, by reason: \(endReasons)",
                "",
            ]
            for (name, count) in broken {
                let padded = name.padding(toLength: max(name.count, 78), withPad: " ", startingAt: 0)
                lines.append("\(padded) \(count == 0 ? "0  ok" : "\(count)  BROKEN")")
            }
            lines.append("audit chain verified: \(verified ? "intact" : "NOT INTACT")")
            return lines.joined(separator: "\n")
        }
    }

    func run() throws -> Report {
        func list(_ ids: [UUID]) -> String {
            "'{" + ids.map { $0.uuidString.lowercased() }.joined(separator: ",") + "}'::uuid[]"
        }
        func rows(_ event: String) -> String {
            "(SELECT count(*) FROM audit_events e WHERE e.session_id = a.id AND e.event = '\(event)')"
        }
        func each(_ ids: [UUID], _ condition: String) -> String {
            "SELECT count(*) FROM unnest(\(list(ids))) AS a(id) WHERE \(condition)"
        }
        /// Events of a session named `event` that have no `earlier` event in the same session.
        func without(_ event: String, _ earlier: String) -> String {
            """
            SELECT count(*) FROM audit_events s WHERE s.event = '\(event)' AND NOT EXISTS (SELECT 1 FROM audit_events e
                WHERE e.session_id = s.session_id AND e.event = '\(earlier)')
            """
        }
        let users = "('hannah.fischer', 'tom.berger', 'omar.haddad', 'sara.klein', 'lena.wolf')"
        let checks: [(String, String)] = [
            (
                "acknowledged offers without exactly one offer.requested",
                each(ledger.offered, "\(rows("offer.requested")) <> 1")
            ),
            (
                "acknowledged offers without exactly one session.ended",
                each(ledger.offered, "\(rows("session.ended")) <> 1")
            ),
            (
                "acknowledged ends without exactly one session.ended",
                each(ledger.ended, "\(rows("session.ended")) <> 1")
            ),
            (
                "ends answered 'ended already' without exactly one session.ended",
                each(ledger.endedBefore, "\(rows("session.ended")) <> 1")
            ),
            (
                "acknowledged control requests without exactly one control.requested",
                each(ledger.controlRequested, "\(rows("control.requested")) <> 1")
            ),
            (
                "control seen granted without exactly one control.granted",
                each(ledger.controlled, "\(rows("control.granted")) <> 1")
            ),
            (
                "events stored twice (one id, two rows)",
                "SELECT count(*) FROM (SELECT id FROM audit_events GROUP BY id HAVING count(*) > 1) d"
            ),
            (
                "sessions with a step recorded twice",
                """
                SELECT count(*) FROM (SELECT session_id, event FROM audit_events
                    WHERE session_id IS NOT NULL AND event IN ('offer.requested', 'consent.granted', 'session.started',
                        'control.requested', 'control.granted', 'session.ended')
                    GROUP BY 1, 2 HAVING count(*) > 1) d
                """
            ),
            ("sessions still active", "SELECT count(*) FROM sessions WHERE NOT ended"),
            (
                "sessions in the database without their offer.requested",
                """
                SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM audit_events e
                    WHERE e.session_id = s.id AND e.event = 'offer.requested')
                """
            ),
            ("session.started without consent.granted", without("session.started", "consent.granted")),
            ("control.granted without control.requested", without("control.granted", "control.requested")),
            (
                "operator sessions stored beyond their operator.login events",
                """
                SELECT greatest(0, (SELECT count(*) FROM operator_sessions WHERE account IN \(users))
                    - (SELECT count(*) FROM audit_events WHERE event = 'operator.login' AND outcome = 'success'))
                """
            ),
            (
                "acknowledged logins beyond the operator.login events",
                """
                SELECT greatest(0, \(ledger.logins) - (SELECT count(*) FROM audit_events WHERE event = 'operator.login'
                    AND outcome = 'success' AND actor_name NOT IN ('lena.wolf', 'peter.schmidt')))
                """
            ),
            (
                "acknowledged logouts beyond the operator.logout events",
                """
                SELECT greatest(0, \(ledger.logouts) - (SELECT count(*) FROM audit_events
                    WHERE event = 'operator.logout'))
                """
            ),
        ]
        var broken: [(String, Int)] = []
        for (name, sql) in checks {
            let answer = try environment.query(sql, database: database)
            broken.append((name, Int(answer) ?? -1))
        }
        let reasons = try environment.query(
            """
            SELECT string_agg(reason || ' ' || n, ', ' ORDER BY n DESC) FROM (SELECT details->>'reason' AS reason,
                count(*) AS n FROM audit_events WHERE event = 'session.ended' GROUP BY 1) r
            """, database: database)
        let totals = try environment.query(
            """
            SELECT (SELECT count(*) FROM audit_events) || ' audit events, ' || (SELECT count(*) FROM sessions)
                || ' sessions'
            """, database: database)
        return Report(broken: broken, endReasons: reasons, totals: totals)
    }
}
