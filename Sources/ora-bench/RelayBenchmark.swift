import Crypto
import Foundation
import Glibc
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import ORAClient
import ORACore
import ORARelay
import Synchronization

/// The screen relay beside what people deploy today, in one run on loopback, with this native load client:
/// a desktop (a TCP server here that speaks just enough RFB), reached directly, through `socat` (a plain byte pipe),
/// through `websockify` (what noVNC users run) and through ora: a viewer WebSocket to `ora-server`, which filters the
/// viewer's stream and relays to a simulated agent's screen leg, which connects to the desktop.
///
/// For each path: bulk desktop→viewer throughput, the relay process's CPU seconds per GB relayed (its whole
/// process tree), and the round trip of a small viewer message and its one-byte answer (p50, p99), from which the
/// direct path's is subtracted. Then `sessions` ora sessions at once, each receiving 3 MB/s, to see whether the
/// relay keeps up and at what CPU cost.
///
/// The viewer asks the desktop with FramebufferUpdateRequest messages (which the relay passes in view-only mode):
/// x = 0 asks for one byte back, x = 1 for y MiB as fast as possible, x = 2 for y KiB every 10 ms during w seconds.
enum RelayBenchmark {
    static let handshake: [UInt8] = Array("RFB 003.008\n".utf8) + [1, 1]

    static func request(_ command: UInt16, _ first: UInt16 = 0, _ second: UInt16 = 0) -> [UInt8] {
        [
            3, 0, UInt8(command >> 8), UInt8(command & 0xFF), UInt8(first >> 8), UInt8(first & 0xFF),
            UInt8(second >> 8), UInt8(second & 0xFF), 0, 1,
        ]
    }

    struct PathResult {
        var name: String
        var megabytesPerSecond: Double
        var cpuSecondsPerGB: Double?
        var roundTrips: [Duration]

        func percentile(_ fraction: Double) -> Double {
            let sorted = roundTrips.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))].seconds * 1e6
        }
    }

    static func run(megabytes: Int, pings: Int, sessions: Int, seconds: Int) async throws {
        let desktop = try await BenchDesktop.start()
        print(
            "relay benchmark: \(megabytes) MiB desktop to viewer, \(pings) round trips per path; then \(sessions) "
                + "ora sessions at 3 MB/s for \(seconds) s")
        var results: [PathResult] = []
        results.append(
            try await measure("direct", relay: nil, megabytes: megabytes, pings: pings) { body in
                try await TCPViewer.with(port: desktop.port, body)
            })

        let socatPort = try freePort()
        let socat = try Helper(
            "/usr/bin/socat",
            ["TCP-LISTEN:\(socatPort),bind=127.0.0.1,reuseaddr,fork,nodelay", "TCP:127.0.0.1:\(desktop.port),nodelay"])
        defer { socat.stop() }
        try await waitForPort(socatPort)
        results.append(
            try await measure("socat", relay: socat.pid, megabytes: megabytes, pings: pings) { body in
                try await TCPViewer.with(port: socatPort, body)
            })

        let websockifyPort = try freePort()
        let websockify = try Helper(
            "/usr/bin/websockify", ["127.0.0.1:\(websockifyPort)", "127.0.0.1:\(desktop.port)"])
        defer { websockify.stop() }
        try await waitForPort(websockifyPort)
        results.append(
            try await measure("websockify", relay: websockify.pid, megabytes: megabytes, pings: pings) { body in
                try await WebSocketViewer.with(url: "ws://127.0.0.1:\(websockifyPort)/", body)
            })

        // ora: a server of its own, machines in the directory and enrolled, simulated agents that accept.
        let bench = try await BenchmarkServer.start(name: "relay", offersPerMachinePerMinute: 600)
        defer { bench.stop() }
        let machines = (0..<max(1, sessions)).map { String(format: "relay-bench-%03d", $0) }
        try addComputers(machines, environment: bench.environment)
        defer { removeComputers(machines, environment: bench.environment) }
        let keys = machines.map { _ in P256.Signing.PrivateKey() }
        try await AgentsBenchmark.enroll(
            names: machines, keys: keys, database: bench.database, environment: bench.environment)
        let agents = ScreenAgents(server: "127.0.0.1", socketBase: bench.socketBase)
        let running = Task {
            await withDiscardingTaskGroup { group in
                for (machine, key) in zip(machines, keys) {
                    let key = key.rawRepresentation
                    group.addTask { await agents.keepConnected(machine, key: key) }
                }
            }
        }
        defer { running.cancel() }
        try await agents.waitUntil(connected: machines.count, within: .seconds(60))
        let ticket = try await openScreen(on: machines[0], bench: bench)
        results.append(
            try await measure(
                "ora relay (stream, ora connect)", relay: bench.server.pid, megabytes: megabytes, pings: pings
            ) {
                body in
                try await StreamViewer.with(port: ticket.relayPort, ticket: ticket.ticket, body)
            })
        let second = try await ticketPath(of: try sessionID(of: machines[0], bench: bench), bench: bench)
        results.append(
            try await measure(
                "ora relay (WebSocket, browser)", relay: bench.server.pid, megabytes: megabytes, pings: pings
            ) {
                body in
                try await WebSocketViewer.with(url: bench.socketBase + second.path, body)
            })

        let direct = results[0]
        print("")
        print(
            "| path | desktop→viewer MB/s | relay CPU-s per GB | round trip p50 µs | p99 µs | added p50 µs | added p99 µs |"
        )
        print("|---|---|---|---|---|---|---|")
        for result in results {
            print(
                String(
                    format: "| %@ | %.0f | %@ | %.0f | %.0f | %@ | %@ |", result.name, result.megabytesPerSecond,
                    result.cpuSecondsPerGB.map { String(format: "%.2f", $0) } ?? "—", result.percentile(0.5),
                    result.percentile(0.99),
                    result.name == "direct"
                        ? "—" : String(format: "%+.0f", result.percentile(0.5) - direct.percentile(0.5)),
                    result.name == "direct"
                        ? "—" : String(format: "%+.0f", result.percentile(0.99) - direct.percentile(0.99))))
        }

        guard sessions > 1 else { return }
        try await concurrentSessions(machines: machines, bench: bench, seconds: seconds, stream: true)
        try await concurrentSessions(machines: machines, bench: bench, seconds: seconds, stream: false)
    }

    /// `machines.count` sessions at once, each viewer receiving 3 MB/s (30 KiB every 10 ms) for `seconds`, through
    /// the relay port (`stream`, as `ora connect`) or the browser's WebSocket.
    static func concurrentSessions(machines: [String], bench: BenchmarkServer, seconds: Int, stream: Bool) async throws
    {
        var tickets: [ViewerTicket] = []
        // Sessions still open from earlier measurements get a new ticket; the others are offered now.
        let open = try await liveSessions(bench: bench)
        for machine in machines {
            if let id = open[machine] {
                tickets.append(try await ticketPath(of: id, bench: bench))
            } else {
                tickets.append(try await openScreen(on: machine, bench: bench))
            }
        }
        let rate = 30 * 1024 * 100
        let received = Shared([Int](repeating: 0, count: tickets.count))
        let cpuBefore = try cpuSeconds(ofTree: bench.server.pid)
        let ownBefore = try cpuSeconds(ofTree: getpid())
        let started = ContinuousClock.now
        let socketBase = bench.socketBase
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, ticket) in tickets.enumerated() {
                group.addTask {
                    let run: @Sendable (any BenchViewer) async throws -> Void = { viewer in
                        try await viewer.send(handshake + request(2, 30, UInt16(seconds)))
                        let expected = rate * seconds
                        var total = 0
                        let deadline = ContinuousClock.now + .seconds(seconds + 5)
                        while total < expected, ContinuousClock.now < deadline {
                            let count = try await viewer.receive()
                            guard count > 0 else { break }
                            total += count
                            received.value.withLock { $0[index] = total }
                        }
                    }
                    if stream {
                        try await StreamViewer.with(port: ticket.relayPort, ticket: ticket.ticket, run)
                    } else {
                        try await WebSocketViewer.with(url: socketBase + ticket.path, run)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (ContinuousClock.now - started).seconds
        let cpu = try cpuSeconds(ofTree: bench.server.pid) - cpuBefore
        let own = try cpuSeconds(ofTree: getpid()) - ownBefore
        let totals = received.value.withLock { $0 }
        let rates = totals.map { Double($0) / Double(seconds) / 1e6 }.sorted()
        let bytes = Double(totals.reduce(0, +))
        let fullRate = Double(rate) / 1e6
        print("")
        print(
            String(
                format:
                    "%d ora sessions (%@), 3 MB/s each for %d s: %.0f MB/s in all; per session min %.2f, median %.2f MB/s; "
                    + "%d of %d at 95%% of 3 MB/s or more; relay CPU %.1f s (%.2f CPU-s per GB, %.0f%% of one core); "
                    + "this load client %.1f CPU-s",
                totals.count, stream ? "stream, ora connect" : "WebSocket, browser", seconds, bytes / elapsed / 1e6,
                rates.first ?? 0, rates[rates.count / 2],
                rates.filter { $0 >= 0.95 * fullRate }.count, totals.count, cpu, cpu / (bytes / 1e9),
                cpu / elapsed * 100, own))
    }

    /// Runs the viewer protocol over one connection: round trips first, then the bulk transfer.
    static func measure(
        _ name: String, relay: pid_t?, megabytes: Int, pings: Int,
        connect: (@escaping @Sendable (any BenchViewer) async throws -> Void) async throws -> Void
    ) async throws -> PathResult {
        let outcome = Shared<(rtts: [Duration], seconds: Double, cpu: Double?)>(([], 0, nil))
        try await connect { viewer in
            try await viewer.send(handshake)
            var rtts: [Duration] = []
            for index in 0..<(pings + 200) {
                let sent = ContinuousClock.now
                try await viewer.send(request(0))
                var got = 0
                while got < 1 { got += try await viewer.receive() }
                // The first round trips warm up connections and caches; they are not counted.
                if index >= 200 { rtts.append(ContinuousClock.now - sent) }
            }
            let cpuBefore = try relay.map(cpuSeconds(ofTree:))
            let started = ContinuousClock.now
            try await viewer.send(request(1, UInt16(megabytes)))
            var total = 0
            while total < megabytes << 20 {
                let count = try await viewer.receive()
                guard count > 0 else { throw BenchmarkError("\(name): the stream ended after \(total) bytes") }
                total += count
            }
            let seconds = (ContinuousClock.now - started).seconds
            let cpu = try relay.map { try cpuSeconds(ofTree: $0) - cpuBefore! }
            outcome.value.withLock { $0 = (rtts, seconds, cpu) }
        }
        let (rtts, seconds, cpu) = outcome.value.withLock { $0 }
        let gigabytes = Double(megabytes << 20) / 1e9
        let result = PathResult(
            name: name, megabytesPerSecond: Double(megabytes << 20) / seconds / 1e6,
            cpuSecondsPerGB: cpu.map { $0 / gigabytes }, roundTrips: rtts)
        print(
            String(
                format: "%@: %.0f MB/s, relay %@ CPU-s per GB, round trip p50 %.0f µs p99 %.0f µs", name,
                result.megabytesPerSecond, result.cpuSecondsPerGB.map { String(format: "%.2f", $0) } ?? "—",
                result.percentile(0.5), result.percentile(0.99)))
        return result
    }

    // MARK: ora sessions

    static func sessionID(of machine: String, bench: BenchmarkServer) async throws -> String {
        guard let id = try await liveSessions(bench: bench)[machine] else {
            throw BenchmarkError("no live session on \(machine)")
        }
        return id
    }

    /// The live sessions' ids by machine.
    static func liveSessions(bench: BenchmarkServer) async throws -> [String: String] {
        let sessions = try await AgentsBenchmark.client(bench.base, token: bench.helper).listSessions().ok.body.json
        var live: [String: String] = [:]
        for session in sessions where session.endReason == nil { live[session.machine] = session.id }
        return live
    }

    /// Offers help to `machine` (its simulated agent accepts) and returns a viewer ticket.
    static func openScreen(on machine: String, bench: BenchmarkServer) async throws -> ViewerTicket {
        let id = try await AgentsBenchmark.client(bench.base, token: bench.helper)
            .offerHelp(body: .json(.init(machine: machine, mode: .view))).created.body.json.id
        return try await ticketPath(of: id, bench: bench)
    }

    /// A viewer ticket for session `id`, once the agent has accepted it.
    static func ticketPath(of id: String, bench: BenchmarkServer) async throws -> ViewerTicket {
        let api = AgentsBenchmark.client(bench.base, token: bench.helper)
        for _ in 0..<200 {
            // 409 until the agent's consent has arrived.
            if let answer = try? await api.openScreen(path: .init(id: id)).created.body.json {
                return ViewerTicket(ticket: answer.ticket, path: answer.path, relayPort: answer.relayPort)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchmarkError("session \(id) was not accepted")
    }

    // MARK: Processes, ports and the directory

    static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw BenchmarkError("no free port") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func waitForPort(_ port: Int) async throws {
        for _ in 0..<100 {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchmarkError("nothing listens on port \(port)")
    }

    /// The user and system CPU time of `root` and every process below it, in seconds.
    static func cpuSeconds(ofTree root: pid_t) throws -> Double {
        var parents: [pid_t: pid_t] = [:]
        var ticks: [pid_t: Int] = [:]
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After the command's closing parenthesis: state, ppid, ... utime (14th field), stime (15th).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let parent = pid_t(fields[1]), let user = Int(fields[11]),
                let system = Int(fields[12])
            else { continue }
            parents[pid] = parent
            ticks[pid] = user + system
        }
        var total = 0
        for (pid, value) in ticks {
            var current = pid
            while current != root, let parent = parents[current], parent > 1 { current = parent }
            if current == root { total += value }
        }
        return Double(total) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func addComputers(_ names: [String], environment: BenchmarkEnvironment) throws {
        let ldif = names.map { name in
            """
            dn: cn=\(name.uppercased()),ou=Workstations,ou=Computers,dc=corp,dc=example
            objectClass: device
            cn: \(name.uppercased())
            ou: Workstations

            """
        }.joined(separator: "\n")
        try ldap("/usr/bin/ldapadd", ["-c"], input: ldif, environment: environment, allowing: [0, 68])
    }

    static func removeComputers(_ names: [String], environment: BenchmarkEnvironment) {
        let dns = names.map { "cn=\($0.uppercased()),ou=Workstations,ou=Computers,dc=corp,dc=example" }
        try? ldap("/usr/bin/ldapdelete", ["-c"] + dns, input: nil, environment: environment, allowing: [0, 32])
    }

    private static func ldap(
        _ tool: String, _ arguments: [String], input: String?, environment: BenchmarkEnvironment, allowing: Set<Int32>
    ) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments =
            [
                "-x", "-H", environment.setting("ORA_LDAP_URI"), "-D", environment.setting("ORA_LDAP_ADMIN_DN"), "-y",
                environment.setting("ORA_LDAP_ADMIN_PASSWORD_FILE"),
            ] + arguments
        let pipe = Pipe()
        process.standardInput = pipe
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        pipe.fileHandleForWriting.write(Data((input ?? "").utf8))
        try pipe.fileHandleForWriting.close()
        process.waitUntilExit()
        guard allowing.contains(process.terminationStatus) else {
            throw BenchmarkError("\(tool) failed with status \(process.terminationStatus)")
        }
    }
}

/// A value shared between tasks.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }
}

/// A relay helper program (socat, websockify), stopped with its children at the end.
final class Helper: Sendable {
    let pid: pid_t

    init(_ executable: String, _ arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw BenchmarkError("\(executable) is missing; run Deploy/dev/install-packages")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        pid = process.processIdentifier
    }

    func stop() {
        kill(pid, SIGKILL)
    }
}

// MARK: The desktop

/// A TCP server that answers viewers as the benchmark's desktop (see `RelayBenchmark`).
final class BenchDesktop: Sendable {
    let port: Int
    private let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    private init(port: Int, channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) {
        self.port = port
        self.channel = channel
    }

    static func start() async throws -> BenchDesktop {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let desktop = BenchDesktop(port: server.channel.localAddress?.port ?? 0, channel: server)
        Task {
            try? await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { try? await BenchDesktop.serve(connection) }
                    }
                }
            }
        }
        return desktop
    }

    private static func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await answer(next: { try await iterator.next() }, write: { try await outbound.write($0) })
        }
    }

    /// Answers one viewer: reads its handshake and requests from `next`, and writes what they ask for.
    static func answer(
        next: () async throws -> ByteBuffer?, write: (ByteBuffer) async throws -> Void
    ) async throws {
        var pending = ByteBuffer()
        var handshaken = false
        let chunk = ByteBuffer(repeating: 0x5A, count: 64 * 1024)
        while var buffer = try await next() {
            pending.writeBuffer(&buffer)
            if !handshaken {
                guard pending.readableBytes >= RelayBenchmark.handshake.count else { continue }
                pending.moveReaderIndex(forwardBy: RelayBenchmark.handshake.count)
                handshaken = true
            }
            while pending.readableBytes >= 10, let message = pending.readBytes(length: 10) {
                let command = Int(message[2]) << 8 | Int(message[3])
                let first = Int(message[4]) << 8 | Int(message[5])
                let second = Int(message[6]) << 8 | Int(message[7])
                switch command {
                case 0:
                    try await write(ByteBuffer(bytes: [2]))
                case 1:
                    var left = first << 20
                    while left > 0 {
                        let size = min(left, chunk.readableBytes)
                        try await write(chunk.getSlice(at: 0, length: size)!)
                        left -= size
                    }
                default:
                    let rate = Double(first * 1024 * 100)
                    let started = ContinuousClock.now
                    let total = Int(rate) * second
                    var sent = 0
                    while sent < total {
                        let due = min(total, Int(rate * (ContinuousClock.now - started).seconds))
                        while sent < due {
                            let size = min(due - sent, chunk.readableBytes)
                            try await write(chunk.getSlice(at: 0, length: size)!)
                            sent += size
                        }
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
            }
            pending.discardReadBytes()
        }
    }
}

// MARK: Viewers

/// What `POST /api/v1/sessions/{id}/screen` answered.
struct ViewerTicket {
    var ticket: String
    var path: String
    var relayPort: Int
}

/// One viewer connection: sends bytes, and receives them as they come (the count of the next chunk; 0 at the end).
protocol BenchViewer: Sendable {
    func send(_ bytes: [UInt8]) async throws
    func receive() async throws -> Int
}

/// A viewer over plain TCP.
final class TCPViewer: BenchViewer, @unchecked Sendable {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    private init(
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) {
        self.inbound = inbound
        self.outbound = outbound
    }

    static func with(port: Int, _ body: @escaping @Sendable (any BenchViewer) async throws -> Void) async throws {
        let channel = try await ScreenStream.connect(host: "127.0.0.1", port: port, tls: nil)
        try await channel.executeThenClose { inbound, outbound in
            try await body(TCPViewer(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    func receive() async throws -> Int {
        try await inbound.next()?.readableBytes ?? 0
    }
}

/// A leg on ora's relay port: the opening line, the server's answer, then bytes (ora connect's viewers, agents).
enum StreamViewer {
    static func with(
        port: Int, ticket: String, _ body: @escaping @Sendable (any BenchViewer) async throws -> Void
    )
        async throws
    {
        try await open(port: port, leg: .viewer, ticket: ticket) { next, write in
            try await body(ClosureViewer(next: next, write: write))
        }
    }

    /// Opens a `leg` with `ticket` and runs `body` with the stream's reader and writer.
    static func open(
        port: Int, leg: ScreenTickets.Leg, ticket: String,
        _ body: (
            _ next: @escaping () async throws -> ByteBuffer?, _ write: @escaping (ByteBuffer) async throws -> Void
        ) async throws -> Void
    ) async throws {
        let channel = try await ScreenStream.connect(host: "127.0.0.1", port: port, tls: nil)
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            let rest = try await ScreenStream.open(
                leg: leg, ticket: ticket, write: { try await outbound.write($0) }, next: { try await iterator.next() })
            var pending: ByteBuffer? = rest.readableBytes > 0 ? rest : nil
            try await body(
                {
                    if let first = pending {
                        pending = nil
                        return first
                    }
                    return try await iterator.next()
                }, { try await outbound.write($0) })
        }
    }
}

/// A viewer made of a reader and a writer, used only within the scope that made them.
final class ClosureViewer: BenchViewer, @unchecked Sendable {
    private let next: () async throws -> ByteBuffer?
    private let write: (ByteBuffer) async throws -> Void

    init(next: @escaping () async throws -> ByteBuffer?, write: @escaping (ByteBuffer) async throws -> Void) {
        self.next = next
        self.write = write
    }

    func send(_ bytes: [UInt8]) async throws {
        try await write(ByteBuffer(bytes: bytes))
    }

    func receive() async throws -> Int {
        try await next()?.readableBytes ?? 0
    }
}

/// A viewer over a WebSocket of binary frames (websockify, ora).
final class WebSocketViewer: BenchViewer, @unchecked Sendable {
    private var inbound: WebSocketInboundStream.AsyncIterator
    private let outbound: WebSocketOutboundWriter

    private init(inbound: WebSocketInboundStream.AsyncIterator, outbound: WebSocketOutboundWriter) {
        self.inbound = inbound
        self.outbound = outbound
    }

    static func with(url: String, _ body: @escaping @Sendable (any BenchViewer) async throws -> Void) async throws {
        let logger = Logger.quiet("ora-bench-viewer")
        _ = try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 20), logger: logger) {
            inbound, outbound, _ in
            try await body(WebSocketViewer(inbound: inbound.makeAsyncIterator(), outbound: outbound))
            try await outbound.close(.normalClosure, reason: nil)
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
    }

    func receive() async throws -> Int {
        while let frame = try await inbound.next() {
            if frame.opcode == .binary || frame.opcode == .continuation { return frame.data.readableBytes }
        }
        return 0
    }
}

// MARK: Agents

/// Simulated agents that accept every offer (with a receipt signed by their device key) and answer every
/// `open_screen` with a screen leg connected to the benchmark's desktop.
final class ScreenAgents: Sendable {
    let server: String
    let socketBase: String
    private let connected = Mutex(0)
    private let logger: Logger

    init(server: String, socketBase: String) {
        self.server = server
        self.socketBase = socketBase
        self.logger = .quiet("ora-bench-agent")
    }

    func keepConnected(_ machine: String, key: Data) async {
        while !Task.isCancelled {
            _ = try? await WebSocketClient.connect(
                url: socketBase + "/agent/v1/connect",
                configuration: .init(maxFrameSize: AgentProtocol.maximumFrameSize),
                logger: logger
            ) { inbound, outbound, _ in
                try await self.converse(machine, key: key, inbound: inbound, outbound: outbound)
            }
            guard (try? await Task.sleep(for: .seconds(1))) != nil else { return }
        }
    }

    private func converse(
        _ machine: String, key: Data, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter
    ) async throws {
        let signingKey = try P256.Signing.PrivateKey(rawRepresentation: key)
        var link = SimulatedAgentLink(inbound: inbound, outbound: outbound)
        guard try await link.authenticate(machine, key: signingKey, server: server) else { return }
        connected.withLock { $0 += 1 }
        defer { connected.withLock { $0 -= 1 } }
        try await withThrowingDiscardingTaskGroup { group in
            while let message = try await link.next() {
                switch message {
                case .offer(let offer):
                    try await link.send(.offerReceived(session: offer.session))
                    try await link.send(
                        .consent(
                            try ConsentReceipt(
                                answering: .session, request: 0, of: offer, answer: .granted,
                                at: AuditTimestamp(Date()),
                                signingWith: signingKey)))
                case .openScreen(_, let ticket, let port):
                    group.addTask { try? await self.screenLeg(ticket: ticket, port: port) }
                default:
                    continue
                }
            }
            group.cancelAll()
        }
    }

    /// One screen leg on the relay port: the opening line with the ticket, then this agent answers as the desktop
    /// itself, so the path measured is viewer → relay → desktop, as for socat and websockify.
    private func screenLeg(ticket: String, port: Int) async throws {
        try await StreamViewer.open(port: port, leg: .agent, ticket: ticket) { next, write in
            try await BenchDesktop.answer(next: next, write: write)
        }
    }

    func waitUntil(connected count: Int, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if connected.withLock({ $0 }) >= count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkError("only \(connected.withLock { $0 }) of \(count) agents connected")
    }
}
