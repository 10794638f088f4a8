import Foundation
import Logging
import ORACore
import ORAServer
import ORAStore
import PostgresNIO
import Synchronization

/// The audit log against the PostgreSQL of `Deploy/dev/services`, in a fresh database:
/// 1. raw batched INSERT throughput of rows of the audit table's shape, with pgbench;
/// 2. the audit writer's sustained throughput with chaining, many callers at once (1 and 2 take turns, in rounds);
/// 3. first-page search latency over 10 million events, by operator and by machine, for one day.
enum AuditBenchmark {
    static func run(seconds: Double, events searchEvents: Int) async throws {
        let environment = BenchmarkEnvironment()
        let setting = environment.setting
        let host = setting("ORA_PG_HOST")
        let port = Int(setting("ORA_PG_PORT")) ?? 5432
        let database = "ora_bench_\(UInt32.random(in: 0...UInt32.max))"
        let superuser = setting("ORA_PG_SUPERUSER")
        let superuserPassword = try environment.secret("ORA_PG_SUPERUSER_PASSWORD_FILE")
        let user = setting("ORA_PG_USER")
        let password = try environment.secret("ORA_PG_PASSWORD_FILE")
        try environment.psql("CREATE DATABASE \(database) OWNER \(user)")
        defer { try? environment.psql("DROP DATABASE \(database) WITH (FORCE)") }
        print("audit benchmark in database \(database)")

        var logger = Logger(label: "ora-bench")
        logger.logLevel = .warning
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
        configuration.options.maximumConnections = 8
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await Migrator(client: client, logger: logger).migrate()

            // 1. pgbench: batches of 500 rows per INSERT, the shape of audit_events with all its indexes.
            try environment.psql("CREATE SEQUENCE bench_sequence START 1000000000", database: database)
            let script = FileManager.default.temporaryDirectory.appendingPathComponent("ora-bench-audit.sql")
            try """
            INSERT INTO audit_events (sequence, id, occurred_at, event, code, actor_kind, actor_id, actor_name,
                machine, session_id, source_address, policy_version, policy_names, outcome, details, previous_hash, hash)
            SELECT nextval('bench_sequence'), gen_random_uuid(), now(), 'offer.requested', 'ORA2001', 'operator',
                'uid=user-' || (g % 1000) || ',ou=People,dc=corp,dc=example', 'user-' || (g % 1000),
                'WS-' || (g % 5000), gen_random_uuid(), '192.0.2.7', 3, '{tier1-view-workstations}', 'success',
                jsonb_build_object('mode', 'view', 'ticket', 'INC' || g), decode(repeat('00', 32), 'hex'),
                sha256(g::text::bytea)
            FROM generate_series(1, 500) AS g;
            """.write(to: script, atomically: true, encoding: .utf8)
            // Each phase starts from the same state: an empty table, the chain at its start, and a checkpoint just
            // done, so that none inherits the rows or the dirty pages of the one before.
            func reset() throws {
                try environment.psql(
                    // As a superuser with triggers off: the append-only triggers would refuse this, as they should.
                    """
                    SET session_replication_role = replica; TRUNCATE audit_events;
                    UPDATE audit_chain_head SET sequence = 0, hash = decode(repeat('00', 32), 'hex')
                    """,
                    database: database)
                try environment.psql("CHECKPOINT", database: database)
            }
            func rawRate(clients: Int) throws -> Double {
                try reset()
                let rate = try pgbench(
                    script: script.path, clients: clients, seconds: Int(seconds), host: host, port: port,
                    user: superuser, password: superuserPassword, database: database)
                return rate * 500
            }

            // 2. The audit writer: many callers, each recording an event and waiting for its commit, again and
            // again. Group commit makes a transaction of what arrives while the last one commits, so the rate grows
            // with the number of callers waiting at once. A writer that finds the head moved under it (as by the
            // resets here) reads it again, as it does when another server has appended.
            let probe = PostgresConnection.Configuration(
                host: host, port: port, username: user, password: password, database: database, tls: .disable)
            let writer = AuditWriter(
                endpoint: DatabaseEndpoint(client: configuration, probe: probe), logger: logger)
            group.addTask { await writer.run() }
            func writerRate(callers: Int) async throws -> Double {
                try reset()
                let (count, failures, latencies) = try await closedLoad(
                    writer: writer, callers: callers, seconds: seconds)
                print(
                    String(
                        format: "audit writer, %d callers, %.0f s: %.0f events/s committed and chained, %d failed",
                        callers, seconds, Double(count) / seconds, failures))
                DirectoryBenchmark.report("  record() until committed", latencies)
                return Double(count) / seconds
            }

            // pgbench and the writer take turns, in rounds; each round's ratio compares phases run a few seconds
            // apart, and the median of the rounds is the figure (the machine's speed drifts over a run).
            var ratios: [Double] = []
            for round in 1...3 {
                let one = try rawRate(clients: 1)
                print(String(format: "round %d: pgbench raw batched INSERT, 1 client: %.0f rows/s", round, one))
                let two = try rawRate(clients: 2)
                print(String(format: "round %d: pgbench raw batched INSERT, 2 clients: %.0f rows/s", round, two))
                let written = try await writerRate(callers: 2048)
                ratios.append(written / two)
                print(
                    String(
                        format: "round %d: the writer reached %.0f %% of 2-client pgbench, %.0f %% of 1-client", round,
                        100 * written / two, 100 * written / one))
            }
            print(String(format: "median ratio to 2-client pgbench: %.0f %%", 100 * ratios.sorted()[ratios.count / 2]))
            _ = try await writerRate(callers: 512)

            // An open load, as a server's requests arrive: events at a fixed rate, whatever the commits do. A rate
            // the writer sustains keeps every event's wait short; above it, the backlog and the waits grow.
            for rate in [20_000, 25_000, 30_000, 35_000, 40_000] {
                let (done, failed, elapsed, waits) = await openLoad(writer: writer, rate: rate, seconds: seconds)
                print(
                    String(
                        format: "audit writer, open load of %d events/s for %.0f s: %.0f events/s committed, %d failed",
                        rate, seconds, Double(done) / elapsed.seconds, failed))
                DirectoryBenchmark.report("  record() until committed", waits)
            }
            let report = try await AuditLog(client: client, logger: logger).verify()
            print("  chain verified: \(report.intact ? "intact" : "BROKEN"), \(report.verified) events")

            // 3. Search over many events spread over 200 days, 1,000 operators, 5,000 machines.
            try loadSearchEvents(searchEvents, environment: environment, database: database)
            let log = AuditLog(client: client, logger: logger)
            let dayStart = searchEventsStart
            var byOperator: [Duration] = []
            var byMachine: [Duration] = []
            var found = 0
            let clock = ContinuousClock()
            for sample in 0..<200 {
                let day = dayStart + Int64(sample % 200) * 86_400_000_000
                let since = AuditTimestamp(microseconds: day)
                let until = AuditTimestamp(microseconds: day + 86_400_000_000)
                byOperator.append(
                    try await clock.measure {
                        found += try await log.search(
                            .init(since: since, until: until, operatorName: "user-\(sample * 37 % 1000)"), limit: 100
                        ).events.count
                    })
                byMachine.append(
                    try await clock.measure {
                        found += try await log.search(
                            .init(since: since, until: until, machine: "WS-\(sample * 131 % 5000)"), limit: 100
                        ).events.count
                    })
            }
            DirectoryBenchmark.report("search first page, one operator, one day (\(searchEvents) events)", byOperator)
            DirectoryBenchmark.report("search first page, one machine, one day (\(searchEvents) events)", byMachine)
            print("  \(found) events found in \(byOperator.count + byMachine.count) searches")

            // 4. Export a million of them as JSON lines, streaming, watching this process's resident memory.
            let exportStart = AuditTimestamp(microseconds: dayStart)
            let exportEnd = AuditTimestamp(
                microseconds: dayStart + Int64(200.0 * 86_400_000_000 * min(1, 1_000_000 / Double(searchEvents))))
            let memoryBefore = residentMemory()
            var peak = memoryBefore
            var exported = 0
            var bytes = 0
            let exportClock = ContinuousClock.now
            for try await event in log.export(.init(since: exportStart, until: exportEnd)) {
                bytes += AuditExport.json(event).count + 1
                exported += 1
                if exported.isMultiple(of: 50_000) { peak = max(peak, residentMemory()) }
            }
            let exportTime = ContinuousClock.now - exportClock
            let exportSeconds = exportTime.seconds
            print(
                String(
                    format:
                        "export of %d events (%.0f MB of JSON lines): %.0f events/s, resident memory %.0f → %.0f MB",
                    exported, Double(bytes) / 1e6, Double(exported) / exportSeconds, Double(memoryBefore) / 1e6,
                    Double(peak) / 1e6))
        }
    }

    /// The first day of the events `loadSearchEvents` writes: 2026-01-01, in microseconds since 1970.
    static let searchEventsStart = 1_767_225_600_000_000 as Int64

    /// Writes `count` events into `database`'s audit log, spread evenly over the 200 days from 2026-01-01, by 1,000
    /// operators (`user-0` …) on 5,000 machines (`WS-0` …), straight into the table (the chain is not extended:
    /// these are for searching), and analyses the table.
    static func loadSearchEvents(_ count: Int, environment: BenchmarkEnvironment, database: String) throws {
        try environment.psql(
            """
            SELECT ora_audit_prepare_partition((date '2026-01-01' + m * interval '1 month')::date)
            FROM generate_series(0, 7) AS m
            """, database: database)
        let loadStart = ContinuousClock.now
        let chunk = 1_000_000
        for offset in stride(from: 0, to: count, by: chunk) {
            try environment.psql(
                """
                INSERT INTO audit_events (sequence, id, occurred_at, event, code, actor_kind, actor_id, actor_name,
                    machine, source_address, policy_version, policy_names, outcome, details, previous_hash, hash)
                SELECT 2000000000::bigint + g, gen_random_uuid(),
                    timestamptz '2026-01-01 00:00:00+00' + g * (interval '200 days' / \(count)),
                    'offer.requested', 'ORA2001', 'operator',
                    'uid=user-' || (g * 7919 % 1000) || ',ou=People,dc=corp,dc=example', 'user-' || (g * 7919 % 1000),
                    'WS-' || (g * 104729 % 5000), '192.0.2.7', 3, '{tier1}', 'success',
                    jsonb_build_object('ticket', 'INC' || g), decode(repeat('00', 32), 'hex'), sha256(g::text::bytea)
                FROM generate_series(\(offset + 1)::bigint, \(min(offset + chunk, count))::bigint) AS g
                """, database: database)
        }
        try environment.psql("ANALYZE audit_events", database: database)
        print("loaded \(count) events for search in \(ContinuousClock.now - loadStart)")
    }

    /// Has `callers` callers each record an event and wait for its commit, again and again, for `seconds`; returns
    /// how many were committed, how many failed, and each wait.
    static func closedLoad(writer: AuditWriter, callers: Int, seconds: Double) async throws -> (Int, Int, [Duration]) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var count = 0
        var failures = 0
        var latencies: [Duration] = []
        try await withThrowingTaskGroup(of: (Int, Int, [Duration]).self) { group in
            for caller in 0..<callers {
                group.addTask {
                    var mine: [Duration] = []
                    var failed = 0
                    // The load itself is kept cheap: what each event shares with this caller's others is made
                    // once, so the time measured is the writer's (each event still gets its own id, time and
                    // session).
                    let actor = AuditActor.operator(
                        dn: "uid=user-\(caller % 1000),ou=People,dc=corp,dc=example", account: "user-\(caller % 1000)")
                    let machine = "WS-\(caller % 5000)"
                    let policy = AuditEvent.PolicyReference(version: 3, names: ["tier1-view-workstations"])
                    let details: [String: AuditValue] = ["mode": "view", "ticket": "INC0012345"]
                    while ContinuousClock.now < deadline {
                        let event = AuditEvent(
                            .offerRequested, time: AuditTimestamp(Date()), actor: actor, machine: machine,
                            session: .random(), source: "192.0.2.7",
                            policy: policy, outcome: .success, details: details)
                        let start = ContinuousClock.now
                        do {
                            try await writer.record(event)
                            mine.append(ContinuousClock.now - start)
                        } catch {
                            failed += 1
                        }
                    }
                    return (mine.count, failed, mine)
                }
            }
            for try await (done, failed, mine) in group {
                count += done
                failures += failed
                latencies += mine
            }
        }
        return (count, failures, latencies)
    }

    /// Records events at `rate` a second for `seconds`, each in a task of its own (as a request handler would),
    /// and returns how many were committed, how many failed, the time until the last was answered, and each wait.
    static func openLoad(
        writer: AuditWriter, rate: Int, seconds: Double
    ) async -> (Int, Int, Duration, [Duration]) {
        final class Results: Sendable {
            let waits = Mutex<[Duration]>([])
            let failed = Atomic(0)
        }
        let results = Results()
        let actors = (0..<1000).map {
            AuditActor.operator(dn: "uid=user-\($0),ou=People,dc=corp,dc=example", account: "user-\($0)")
        }
        let machines = (0..<5000).map { "WS-\($0)" }
        let policy = AuditEvent.PolicyReference(version: 3, names: ["tier1-view-workstations"])
        let details: [String: AuditValue] = ["mode": "view", "ticket": "INC0012345"]
        let total = Int(Double(rate) * seconds)
        let start = ContinuousClock.now
        await withDiscardingTaskGroup { group in
            var sent = 0
            while sent < total {
                // As many as are due by now; the clock, not the sleeps, sets the pace.
                let due = min(total, Int((ContinuousClock.now - start).seconds * Double(rate)) + 1)
                while sent < due {
                    let index = sent
                    group.addTask {
                        let event = AuditEvent(
                            .offerRequested, time: AuditTimestamp(Date()), actor: actors[index % 1000],
                            machine: machines[index % 5000],
                            session: .random(), source: "192.0.2.7", policy: policy, outcome: .success,
                            details: details)
                        let begun = ContinuousClock.now
                        do {
                            try await writer.record(event)
                            let wait = ContinuousClock.now - begun
                            results.waits.withLock { $0.append(wait) }
                        } catch {
                            results.failed.add(1, ordering: .relaxed)
                        }
                    }
                    sent += 1
                }
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        let elapsed = ContinuousClock.now - start
        let waits = results.waits.withLock { $0 }
        return (waits.count, results.failed.load(ordering: .relaxed), elapsed, waits)
    }

    /// This process's resident memory in bytes.
    static func residentMemory() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// Runs pgbench with `script` and returns its transactions per second.
    static func pgbench(
        script: String,
        clients: Int,
        seconds: Int,
        host: String,
        port: Int,
        user: String,
        password: String,
        database: String
    ) throws -> Double {
        // pgbench ends its -T run with SIGALRM; a process started from here inherits this process's blocked
        // signals, so the mask is cleared first (otherwise it never stops).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        process.arguments = [
            "-MPOSIX", "-e",
            #"sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!"; exec @ARGV or die "exec: $!""#,
            "--", "/usr/bin/pgbench", "-n", "-f", script, "-c", "\(clients)", "-j", "\(clients)", "-T", "\(seconds)",
            "-h", host, "-p", "\(port)",
            "-U", user, database,
        ]
        process.environment = ["PGPASSWORD": password]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
            let tps = Double(line.dropFirst(6).prefix { $0 == "." || $0.isNumber })
        else { throw BenchmarkError("pgbench did not report tps: \(text)") }
        return tps
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
