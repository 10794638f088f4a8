import AsyncHTTPClient
import Crypto
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ORAAgent
import ORAClient
import ORACore
import PostgresNIO
import Synchronization

/// One ora-server (the release binary, as a process of its own) with many simulated agents connected, against the
/// PostgreSQL and slapd of `Deploy/dev/services`, in a fresh database:
/// 1. the server's resident memory before and after `count` agents connected, per agent, and the processor time the
///    connected agents cost while nothing happens but their pings;
/// 2. how long an offer takes from the helper's request to the agent's receiving it, while all are connected, and
///    beside it how long a request the server answers at once (`/healthz`) takes;
/// 3. how long, after the server restarts, until every agent is back (they reconnect with the agent's back-off).
///
/// The simulated agents speak the real protocol with real device keys: hello, a challenge signed with the key,
/// welcome, then offers.
enum AgentsBenchmark {
    /// - Parameters:
    ///   - tls: the agents' connections and the helper's requests over the server's own TLS.
    ///   - openingsPerAddress: the server's `listen.openings_per_address`, when not its default: every simulated agent
    ///     connects from 127.0.0.1, so the default holds their connecting and reconnecting to 128 at a time.
    static func run(count: Int, offers: Int, tls: Bool = false, openingsPerAddress: Int? = nil) async throws {
        let bench = try await BenchmarkServer.start(
            name: "agents", offersPerMachinePerMinute: 600, tls: tls, openingsPerAddress: openingsPerAddress)
        defer { bench.stop() }
        let (server, base, helper, database, environment) = (
            bench.server, bench.base, bench.helper, bench.database, bench.environment
        )
        let caFile = bench.certificate
        print(
            "agents benchmark: \(count) agents, \(offers) offers, \(tls ? "TLS" : "plain TCP"), "
                + "openings per address \(openingsPerAddress.map(String.init) ?? "128 (default)"), database \(database)"
        )

        // The machines, enrolled directly in the database: the workstations of the demo directory (which offers
        // go to) and as many more as asked.
        let targets = ["ws-0101", "ws-0102", "ws-0201", "ws-0202"]
        let names = targets + (0..<max(0, count - targets.count)).map { String(format: "bench-%05d", $0) }
        let keys = names.map { _ in P256.Signing.PrivateKey() }
        try await enroll(names: names, keys: keys, database: database, environment: environment)

        let idle = try server.residentKilobytes()
        let fleet = Fleet(
            server: tls ? "localhost" : "127.0.0.1", url: bench.socketBase + "/agent/v1/connect", caFile: caFile)
        let started = ContinuousClock.now
        let runners = Task {
            await withDiscardingTaskGroup { group in
                for (name, key) in zip(names, keys) {
                    let key = key.rawRepresentation
                    group.addTask { await fleet.keepConnected(name, key: key) }
                    // Connections are opened at a steady pace rather than all at once, as a fleet of machines
                    // starting over a morning would; it also keeps the listen backlog from overflowing.
                    try? await Task.sleep(for: .microseconds(200))
                }
            }
        }
        defer { runners.cancel() }
        try await fleet.waitUntil(connected: count, within: .seconds(300))
        print(String(format: "%d agents connected in %.1f s", count, (ContinuousClock.now - started).seconds))
        try await Task.sleep(for: .seconds(5))
        let loaded = try server.residentKilobytes()
        print(
            String(
                format: "server resident memory: %.1f MB idle, %.1f MB with %d agents: %.1f KB per agent",
                Double(idle) / 1024, Double(loaded) / 1024, count, Double(loaded - idle) / Double(count)))
        // What the connected agents cost while nothing happens: their pings, over one ping interval.
        let quiet = try ChatBenchmark.processTicks(server.pid)
        let quietStarted = ContinuousClock.now
        try await Task.sleep(for: .seconds(30))
        let busy = Double(try ChatBenchmark.processTicks(server.pid) - quiet) / Double(sysconf(Int32(_SC_CLK_TCK)))
        print(
            String(
                format: "server processor time with %d idle agents (pinged every 30 s): %.1f %% of one core",
                count, 100 * busy / (ContinuousClock.now - quietStarted).seconds))

        // Offers, one after another, round the four workstations; each session ended before the next offer to it.
        var latencies: [Duration] = []
        for index in 0..<(offers + 20) {
            let machine = targets[index % targets.count]
            let offered = ContinuousClock.now
            let api = client(base, token: helper, caFile: caFile)
            let text = try await api.offerHelp(body: .json(.init(machine: machine, mode: .view))).created.body.json.id
            guard let session = UUID(uuidString: text) else {
                throw BenchmarkError("the offer's answer has no session id")
            }
            let received = try await fleet.arrival(of: session, within: .seconds(10))
            // The first offers warm the directory cache and the connections; they are not counted.
            if index >= 20 { latencies.append(received - offered) }
            _ = try await api.endSession(path: .init(id: text)).ok
        }
        DirectoryBenchmark.report("offer to agent, with \(count) agents connected", latencies)
        // For comparison, the floor under that figure on this machine: a request of the same client that the server
        // answers without asking anything of anyone.
        var floor: [Duration] = []
        let api = client(base, caFile: caFile)
        for index in 0..<(offers + 20) {
            let asked = ContinuousClock.now
            _ = try await api.health().ok
            if index >= 20 { floor.append(ContinuousClock.now - asked) }
        }
        DirectoryBenchmark.report("GET /healthz, which asks nothing of anyone, for comparison", floor)

        // Restart: every agent loses its connection and comes back with its back-off.
        let stopping = ContinuousClock.now
        server.stop()
        try server.start()
        try await waitUntilServing(base, server: server, caFile: caFile)
        let serving = ContinuousClock.now
        print(String(format: "server stopped and started again in %.1f s", (serving - stopping).seconds))
        try await fleet.waitUntil(connected: count, within: .seconds(300), afterLosingAll: true)
        print(
            String(
                format: "after the restart, all %d agents back %.1f s after the server was serving again",
                count, (ContinuousClock.now - serving).seconds))
    }

    /// Inserts the machines with their public keys, as enrollment would.
    static func enroll(
        names: [String], keys: [P256.Signing.PrivateKey], database: String, environment: BenchmarkEnvironment
    ) async throws {
        var logger = Logger(label: "ora-bench")
        logger.logLevel = .warning
        let configuration = PostgresClient.Configuration(
            host: environment.setting("ORA_PG_HOST"), port: Int(environment.setting("ORA_PG_PORT")) ?? 5432,
            username: environment.setting("ORA_PG_USER"), password: try environment.secret("ORA_PG_PASSWORD_FILE"),
            database: database, tls: .disable)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let publicKeys = keys.map { DevicePublicKey.text($0.publicKey) }
            let dns = names.map { "cn=\($0.uppercased()),ou=Workstations,ou=Computers,dc=corp,dc=example" }
            try await client.query(
                """
                INSERT INTO machines (name, computer_dn, public_key, operating_system, agent_version, enrolled_at,
                    enrolled_by)
                SELECT name, dn, key, 'Debian GNU/Linux 12', 'bench', now(), 'ora-bench'
                FROM unnest(\(names)::text[], \(dns)::text[], \(publicKeys)::text[]) AS m(name, dn, key)
                """,
                logger: logger)
        }
    }

    /// The API of the server at `base`, as the operator `token` when given, trusting `caFile` alone when given.
    static func client(_ base: String, token: String? = nil, caFile: String? = nil) -> Client {
        Client(server: URL(string: base)!, token: token, caFile: caFile, timeout: .seconds(10))
    }

    static func login(_ user: String, base: String, caFile: String? = nil) async throws -> String {
        try await client(base, caFile: caFile).login(body: .json(.init(user: user, password: "ora-demo"))).ok.body
            .json.token
    }

    static func waitUntilServing(_ base: String, server: ServerProcess, caFile: String? = nil) async throws {
        for _ in 0..<300 {
            guard server.isRunning else { throw BenchmarkError("the server stopped; see \(server.log)") }
            if (try? await client(base, caFile: caFile).health().ok) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchmarkError("the server did not start; see its log")
    }
}

/// The simulated agents: each keeps one connection open, reconnecting with the agent's back-off, and notes when
/// each offer arrives.
final class Fleet: Sendable {
    private struct State {
        var connected = 0
        var lostAll = false
        var arrivals: [UUID: ContinuousClock.Instant] = [:]
    }

    let server: String
    let url: String
    /// With TLS, the agents trust this certificate alone.
    private let tls: TLSConfiguration?
    private let state = Mutex(State())
    private let logger: Logger

    init(server: String, url: String, caFile: String? = nil) {
        self.server = server
        self.url = url
        self.tls = caFile.map { file in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(file)
            return configuration
        }
        self.logger = .quiet("ora-bench-agent")
    }

    var connected: Int { state.withLock { $0.connected } }

    /// Keeps `machine` connected, proving `key` (the raw P-256 private key).
    func keepConnected(_ machine: String, key: Data) async {
        var failures = 0
        while !Task.isCancelled {
            let started = ContinuousClock.now
            _ = try? await WebSocketClient.connect(
                url: url, configuration: .init(maxFrameSize: AgentProtocol.maximumFrameSize), tlsConfiguration: tls,
                logger: logger
            ) { inbound, outbound, _ in
                try await self.converse(machine, key: key, inbound: inbound, outbound: outbound)
            }
            if ContinuousClock.now - started > .seconds(30) { failures = 0 }
            failures += 1
            guard (try? await Task.sleep(for: AgentRunner.backOff(after: failures))) != nil else { return }
        }
    }

    private func converse(
        _ machine: String, key: Data, inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async throws {
        var link = SimulatedAgentLink(inbound: inbound, outbound: outbound)
        guard
            try await link.authenticate(
                machine, key: try P256.Signing.PrivateKey(rawRepresentation: key), server: server)
        else { return }
        state.withLock { $0.connected += 1 }
        defer {
            state.withLock { state in
                state.connected -= 1
                if state.connected == 0 { state.lostAll = true }
            }
        }
        while let message = try await link.next() {
            if case .offer(let offer) = message {
                let now = ContinuousClock.now
                state.withLock { $0.arrivals[offer.session] = now }
            }
        }
    }

    /// Waits until `count` agents are connected (after all had lost their connection, when `afterLosingAll`).
    func waitUntil(connected count: Int, within limit: Duration, afterLosingAll: Bool = false) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let (connected, lostAll) = state.withLock { ($0.connected, $0.lostAll) }
            if connected >= count, lostAll || !afterLosingAll { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkError("only \(connected) of \(count) agents connected within \(limit)")
    }

    /// When the offer of `session` reached its agent.
    func arrival(of session: UUID, within limit: Duration) async throws -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let arrived = state.withLock({ $0.arrivals.removeValue(forKey: session) }) { return arrived }
            await Task.yield()
        }
        throw BenchmarkError("the offer of session \(session) did not reach its agent")
    }
}

/// The ora-server release binary, run as its own process so its memory can be read.
final class ServerProcess: @unchecked Sendable {
    private let binary: String
    private let configuration: String
    let log: String
    private var process: Process?

    init(binary: String, configuration: String, log: String) {
        self.binary = binary
        self.configuration = configuration
        self.log = log
    }

    func start() throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BenchmarkError("\(binary) is missing: build it with swift build -c release --product ora-server")
        }
        let process = Process()
        // ORA_BENCH_SERVER_WRAPPER runs the server under a profiler, such as heaptrack.
        if let wrapper = ProcessInfo.processInfo.environment["ORA_BENCH_SERVER_WRAPPER"] {
            process.executableURL = URL(fileURLWithPath: wrapper)
            process.arguments = [binary, "--config", configuration]
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--config", configuration]
        }
        if !FileManager.default.fileExists(atPath: log) {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        output.seekToEndOfFile()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.process = process
    }

    var isRunning: Bool { process?.isRunning ?? false }

    /// The server's process id (0 when it is not running).
    var pid: pid_t { process?.processIdentifier ?? 0 }

    /// Stops the server with SIGTERM and waits for it.
    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        while process.isRunning { usleep(10_000) }
    }

    /// The server's resident set size, in KiB.
    func residentKilobytes() throws -> Int {
        guard let process else { throw BenchmarkError("the server is not running") }
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { throw BenchmarkError("no VmRSS for the server") }
        return kilobytes
    }
}

/// A simulated agent's side of its WebSocket: protocol messages out and in, and the handshake.
struct SimulatedAgentLink {
    private var messages: WebSocketInboundMessageStream.AsyncIterator
    private let outbound: WebSocketOutboundWriter

    init(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) {
        self.messages = inbound.messages(maxSize: AgentProtocol.maximumFrameSize).makeAsyncIterator()
        self.outbound = outbound
    }

    func send(_ message: AgentProtocol.AgentMessage) async throws {
        try await outbound.write(.text(String(decoding: AgentProtocol.encode(message), as: UTF8.self)))
    }

    /// The server's next message, or nil when the connection ended.
    mutating func next() async throws -> AgentProtocol.ServerMessage? {
        guard case .text(let text) = try await messages.next() else { return nil }
        return try AgentProtocol.decodeServerMessage(Array(text.utf8))
    }

    /// The agent's handshake: hello, the signed challenge, welcome.
    /// - Returns: whether the server welcomed the machine.
    mutating func authenticate(_ machine: String, key: P256.Signing.PrivateKey, server: String) async throws -> Bool {
        try await send(.hello(machine: machine, agentVersion: "bench", operatingSystem: "Debian GNU/Linux 12"))
        guard case .challenge(let nonce) = try await next() else { return false }
        let statement = AgentAuthentication(server: server, machine: machine, nonce: nonce)
        try await send(.authenticate(signature: try statement.sign(with: key)))
        guard case .welcome = try await next() else { return false }
        return true
    }
}
