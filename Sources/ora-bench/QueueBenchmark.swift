import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import ORACore
import Synchronization

/// The helpdesk's queue through one ora-server (the release binary): `watchers` helpers watch the queue's event
/// stream (each a helper of their own, all allowed to answer), machines send `invitations` invitations for the
/// helpdesk one after another (signed with their device keys, as `ora-agent invite --helpdesk` sends them), and two
/// helpers take each at the same moment. Measured: from just before a machine sends to each watcher's reading the
/// invitation, and each take from its request to its answer; checked: every watcher saw every invitation, and each
/// was taken by exactly one helper.
enum QueueBenchmark {
    static func run(watchers: Int, invitations: Int) async throws {
        let bench = try await BenchmarkServer.start(name: "queue", offersPerMachinePerMinute: 60)
        defer { bench.stop() }
        let machines = (0..<10).map { String(format: "queue-%04d", $0) }
        let helpers = (0..<watchers).map { String(format: "queue-helper-%03d", $0) }
        StreamingLoad.progress("adding \(machines.count) computers and \(helpers.count) helpers to the directory")
        try StreamingLoad.addToDirectory(machines: machines, helpers: helpers, environment: bench.environment)
        let keys = machines.map { _ in P256.Signing.PrivateKey() }
        try await AgentsBenchmark.enroll(
            names: machines, keys: keys, database: bench.database, environment: bench.environment)
        print("queue benchmark: \(watchers) helpers watching, \(invitations) invitations, two helpers taking each")

        var tokens: [String] = []
        for helper in helpers { tokens.append(try await AgentsBenchmark.login(helper, base: bench.base)) }
        StreamingLoad.progress("\(helpers.count) helpers logged in")
        let pool = StreamingLoad.connectionPool(for: watchers)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(connectionPool: pool))
        let streams = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(connectionPool: pool))
        let seen = Sightings()
        let opened = Counter()
        let base = bench.base
        let watching = tokens
        let readers = Task {
            try await StreamingLoad.eachPaced(watching) { token in
                try await watch(streams, base, token: token, seen: seen, opened: opened)
            }
        }
        var appeared: [Duration] = []
        var takes: [Duration] = []
        var posts: [Duration] = []
        var missing = 0
        var wrongTakes = 0
        do {
            try await opened.wait(for: watchers, within: .seconds(60), what: "queue streams open")
            for number in 0..<invitations {
                let machine = number % machines.count
                let invitation = Invitation(
                    server: bench.base, machine: machines[machine],
                    askedBy: .init(account: "person\(number)", displayName: "Person \(number)"),
                    message: "Benchmark invitation \(number)", channel: .helpdesk, createdAt: Date(),
                    expiresAt: Date() + 3600, password: nil, machineKey: keys[machine].publicKey)
                let signed = try SignedInvitation(invitation, signingWith: keys[machine])
                let id = invitation.id.uuidString.lowercased()
                let sent = ContinuousClock.now
                seen.expect(id, at: sent)
                let answer = try await post(
                    http, bench.base + "/agent/v1/invitations", body: signed.fileContent, token: nil)
                posts.append(ContinuousClock.now - sent)
                guard answer.status == 201 else { throw BenchmarkError("sending an invitation: \(answer.body)") }
                // Every watcher has it, or 5 seconds pass.
                let deadline = ContinuousClock.now + .seconds(5)
                while seen.count(id) < watchers, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                appeared += seen.latencies(id)
                missing += watchers - seen.count(id)
                // Two helpers take it at the same moment.
                let pair = [tokens[number % watchers], tokens[(number * 7 + 1) % watchers]]
                let answers = try await withThrowingTaskGroup(of: (UInt, Duration).self) { group in
                    for token in pair {
                        group.addTask {
                            let started = ContinuousClock.now
                            let answer = try await post(
                                http, base + "/api/v1/invitations/\(id)/take", body: Data(), token: token)
                            return (answer.status, ContinuousClock.now - started)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                takes += answers.map(\.1)
                if pair[0] != pair[1], answers.map(\.0).sorted() != [200, 409] { wrongTakes += 1 }
                try await Task.sleep(for: .milliseconds(50))
            }
        } catch {
            readers.cancel()
            try? await http.shutdown()
            try? await streams.shutdown()
            throw error
        }
        readers.cancel()
        ConsoleBenchmark.report("sent → seen by each watcher", appeared)
        ConsoleBenchmark.report("the machine's POST, answered", posts)
        ConsoleBenchmark.report("take, answered (two at once)", takes)
        print("missed by a watcher: \(missing); invitations not taken by exactly one of two: \(wrongTakes)")
        let claimed = try bench.environment.query(
            "SELECT count(*) FROM audit_events WHERE event = 'invitation.claimed'", database: bench.database)
        print("invitation.claimed events recorded: \(claimed) for \(invitations) invitations")
        try await http.shutdown()
        try await streams.shutdown()
    }

    /// Reads one helper's queue stream, noting when each open invitation arrives, until cancelled.
    static func watch(
        _ http: HTTPClient, _ base: String, token: String, seen: Sightings, opened: Counter
    ) async throws {
        try await StreamingLoad.readEvents(http, base + "/api/v1/invitations/events", token: token, opened: opened) {
            name, data in
            guard name == "invitation", StreamingLoad.field("state", in: data) == "open",
                let id = StreamingLoad.field("id", in: data)
            else { return }
            seen.saw(id.lowercased(), by: token)
        }
    }

    static func post(
        _ http: HTTPClient, _ url: String, body: Data, token: String?
    ) async throws -> (status: UInt, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 20)
        return (UInt(response.status.code), String(buffer: answer))
    }
}

/// When each watcher first saw each invitation, from when it was sent.
final class Sightings: Sendable {
    private struct State {
        var sent: [String: ContinuousClock.Instant] = [:]
        var seen: [String: [String: Duration]] = [:]
    }

    private let state = Mutex(State())

    func expect(_ id: String, at time: ContinuousClock.Instant) {
        state.withLock { $0.sent[id] = time }
    }

    func saw(_ id: String, by watcher: String) {
        let now = ContinuousClock.now
        state.withLock { state in
            guard let sent = state.sent[id], state.seen[id]?[watcher] == nil else { return }
            state.seen[id, default: [:]][watcher] = now - sent
        }
    }

    func count(_ id: String) -> Int { state.withLock { $0.seen[id]?.count ?? 0 } }

    func latencies(_ id: String) -> [Duration] { state.withLock { Array(($0.seen[id] ?? [:]).values) } }
}
