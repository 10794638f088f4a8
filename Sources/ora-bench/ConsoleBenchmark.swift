import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The console with many machines and a long audit log, against a release `ora-server` of its own:
/// 1. `machines` machines enrolled (straight into the database, with their directory facts: five sites under
///    Workstations, Laptops and Kiosks, some in computer groups, a third online) and `events` audit events;
/// 2. machine searches as the console asks them, timed at the client over loopback, each kind many times;
/// 3. the audit timeline's first page for one day, and with more filters;
/// 4. exports of growing size, watching the server's resident memory;
/// 5. the machine page in Chromium: navigation start to the machine list rendered, with a cold and a warm cache.
enum ConsoleBenchmark {
    static func run(machines: Int, events: Int) async throws {
        let bench = try await BenchmarkServer.start(name: "console")
        defer { bench.stop() }
        let environment = bench.environment
        print("console benchmark in database \(bench.database), \(machines) machines, \(events) audit events")

        let loadStart = ContinuousClock.now
        try environment.psql(
            """
            INSERT INTO machines (name, computer_dn, public_key, operating_system, agent_version, enrolled_at,
                enrolled_by, last_seen_at, connected_instance, directory_dn, directory_containers,
                directory_container_keys, directory_groups, directory_group_keys, directory_checked_at)
            SELECT lower(m.name), m.dn, 'bench', 'Debian GNU/Linux 12', '1.0', now(), 'bench',
                now() - (m.g % 1000) * interval '1 minute',
                CASE WHEN m.g % 3 = 0 THEN (SELECT id FROM server_instances LIMIT 1) END,
                m.dn, m.containers, m.containers, m.groups, m.groups, now()
            FROM (
                SELECT g, name, 'cn=' || name || ',' || site || ',' || kind || ',ou=Computers,dc=corp,dc=example' AS dn,
                    ARRAY[site || ',' || kind || ',ou=Computers,dc=corp,dc=example',
                        kind || ',ou=Computers,dc=corp,dc=example', 'ou=Computers,dc=corp,dc=example'] AS containers,
                    array_remove(ARRAY[
                        CASE WHEN g % 7 = 0
                            THEN 'cn=finance workstations,ou=computer groups,ou=groups,dc=corp,dc=example' END,
                        CASE WHEN g % 11 = 0
                            THEN 'cn=pilot machines,ou=computer groups,ou=groups,dc=corp,dc=example' END
                    ], NULL) AS groups
                FROM (
                    SELECT g, 'PC-' || lpad(g::text, 5, '0') AS name,
                        'ou=' || (ARRAY['berlin', 'hamburg', 'munich', 'cologne', 'frankfurt'])[g % 5 + 1] AS site,
                        CASE WHEN g % 10 < 6 THEN 'ou=workstations' WHEN g % 10 < 9 THEN 'ou=laptops'
                            ELSE 'ou=kiosks' END AS kind
                    FROM generate_series(1, \(machines)) AS g
                ) AS named
            ) AS m;
            ANALYZE machines
            """, database: bench.database)
        print("loaded \(machines) machines in \(ContinuousClock.now - loadStart)")
        try AuditBenchmark.loadSearchEvents(events, environment: environment, database: bench.database)

        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = http.shutdown() }
        let token = bench.helper
        func get(_ path: String) async throws -> (Duration, Int) {
            var request = HTTPClientRequest(url: bench.base + path)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            let clock = ContinuousClock()
            var bytes = 0
            let elapsed = try await clock.measure {
                let response = try await http.execute(request, timeout: .seconds(60))
                guard response.status == .ok else { throw BenchmarkError("\(path): \(response.status)") }
                for try await part in response.body { bytes += part.readableBytes }
            }
            return (elapsed, bytes)
        }
        func measure(_ name: String, samples: Int = 300, _ path: (Int) -> String) async throws {
            for index in 0..<10 { _ = try await get(path(index)) }
            var latencies: [Duration] = []
            for index in 0..<samples { latencies.append(try await get(path(index)).0) }
            report(name, latencies)
        }
        func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }

        // 2. Machine searches, a page of 100 each, as the console asks them.
        print("machine search (GET /api/v1/machines, first page of 100; timed at the client over loopback):")
        try await measure("  no condition (the page as it opens)") { _ in "/api/v1/machines?limit=100" }
        try await measure("  name contains 2 to 5 characters") { index in
            let digits = String(format: "%05d", (index * 7919) % machines + 1)
            return "/api/v1/machines?limit=100&q=" + String(digits.suffix(2 + index % 4))
        }
        try await measure("  a whole name") { index in
            "/api/v1/machines?limit=100&q=pc-" + String(format: "%05d", (index * 104_729) % machines + 1)
        }
        let sites = ["berlin", "hamburg", "munich", "cologne", "frankfurt"]
        try await measure("  one OU (a site below Workstations)") { index in
            "/api/v1/machines?limit=100&ou="
                + encoded("ou=\(sites[index % 5]),ou=workstations,ou=computers,dc=corp,dc=example")
        }
        try await measure("  one computer group") { _ in
            "/api/v1/machines?limit=100&group="
                + encoded("cn=pilot machines,ou=computer groups,ou=groups,dc=corp,dc=example")
        }
        try await measure("  online only, name contains 1 digit") { index in
            "/api/v1/machines?limit=100&online=true&q=\(index % 10)"
        }
        try await measure("  only where the helper may help") { _ in "/api/v1/machines?limit=100&access=view" }
        try await measure("  only where the helper may help, in an OU where nowhere (reads all its machines)") {
            _ in "/api/v1/machines?limit=100&access=view&ou=" + encoded("ou=kiosks,ou=computers,dc=corp,dc=example")
        }
        try await measure("  the next page (after a name)") { index in
            "/api/v1/machines?limit=100&after=pc-" + String(format: "%05d", (index * 31) % machines + 1)
        }

        // 3. The audit timeline, as an auditor opens it: one day, first page of 100, newest first.
        let auditor = try await AgentsBenchmark.login("sara.klein", base: bench.base)
        func audit(_ name: String, _ query: (Int) -> String) async throws {
            var latencies: [Duration] = []
            for index in 0..<210 {
                var request = HTTPClientRequest(url: bench.base + "/api/v1/audit?limit=100&" + query(index))
                request.headers.add(name: "Authorization", value: "Bearer \(auditor)")
                let clock = ContinuousClock()
                let elapsed = try await clock.measure {
                    let response = try await http.execute(request, timeout: .seconds(60))
                    guard response.status == .ok else { throw BenchmarkError("audit: \(response.status)") }
                    for try await _ in response.body {}
                }
                if index >= 10 { latencies.append(elapsed) }
            }
            report(name, latencies)
        }
        func day(_ index: Int) -> String {
            let start = Date(timeIntervalSince1970: Double(AuditBenchmark.searchEventsStart) / 1e6)
                .addingTimeInterval(Double(index % 200) * 86_400)
            let formatter = ISO8601DateFormatter()
            return "since=\(formatter.string(from: start))&until=\(formatter.string(from: start + 86_400))"
        }
        print("audit timeline (GET /api/v1/audit, first page of 100, \(events) events over 200 days):")
        try await audit("  one day") { day($0 * 37) }
        try await audit("  one day, one operator") { day($0 * 37) + "&operator=user-\($0 * 13 % 1000)" }
        try await audit("  one day, one machine") { day($0 * 37) + "&machine=WS-\($0 * 131 % 5000)" }
        try await audit("  one day, event type and outcome") { day($0 * 37) + "&event=offer.requested&outcome=success" }
        try await audit("  everything, no filter") { _ in "" }

        // 4. Exports of growing size: the server's memory must not grow with them.
        print("audit export (GET /api/v1/audit/export, JSON lines, read by the client as it comes):")
        for days in [1, 20, 200] {
            let start = Date(timeIntervalSince1970: Double(AuditBenchmark.searchEventsStart) / 1e6)
            let formatter = ISO8601DateFormatter()
            let until = formatter.string(from: start.addingTimeInterval(Double(days) * 86_400))
            var request = HTTPClientRequest(
                url: bench.base + "/api/v1/audit/export?since=\(formatter.string(from: start))&until=\(until)")
            request.headers.add(name: "Authorization", value: "Bearer \(auditor)")
            let before = try bench.server.residentKilobytes()
            var peak = before
            var bytes = 0
            var lines = 0
            let clock = ContinuousClock()
            let elapsed = try await clock.measure {
                let response = try await http.execute(request, timeout: .seconds(3600))
                var sampled = ContinuousClock.now
                for try await part in response.body {
                    bytes += part.readableBytes
                    lines += part.readableBytesView.lazy.filter { $0 == UInt8(ascii: "\n") }.count
                    if ContinuousClock.now - sampled > .milliseconds(200) {
                        peak = max(peak, try bench.server.residentKilobytes())
                        sampled = ContinuousClock.now
                    }
                }
            }
            peak = max(peak, try bench.server.residentKilobytes())
            print(
                String(
                    format:
                        "  %3d days: %9d events, %6.0f MB in %6.1f s (%.0f events/s); server resident %.0f → %.0f MB",
                    days, lines, Double(bytes) / 1e6, elapsed.seconds, Double(lines) / elapsed.seconds,
                    Double(before) / 1024, Double(peak) / 1024))
        }

        // 5. The machine page in Chromium.
        let python =
            ProcessInfo.processInfo.environment["ORA_TEST_PYTHON"]
            ?? FileManager.default.currentDirectoryPath + "/.build/test-python/bin/python"
        let script = FileManager.default.currentDirectoryPath + "/Tests/Browser/console-timing.py"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, bench.base, "lena.wolf", "ora-demo", "20"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let timings = try JSONSerialization.jsonObject(with: data) as? [String: [Double]]
        else { throw BenchmarkError("console-timing.py failed (run from the package root, after Deploy/dev/test)") }
        print("the machine page in Chromium (navigation start → machine list rendered, \(machines) machines):")
        for (name, label) in [("cold", "new browser profile, empty cache"), ("warm", "files cached, reloaded")] {
            let values = (timings[name] ?? []).sorted()
            guard !values.isEmpty else { continue }
            func at(_ fraction: Double) -> Double {
                values[min(values.count - 1, Int(Double(values.count) * fraction))]
            }
            print(
                String(
                    format: "  %@: p50 %.0f ms  p95 %.0f ms  max %.0f ms  (%d loads)", label, at(0.5), at(0.95),
                    values.last!, values.count))
        }
    }

    /// Prints the median, 95th and 99th percentile and the largest of `samples`, in milliseconds.
    static func report(_ name: String, _ samples: [Duration]) {
        let sorted = samples.sorted()
        func milliseconds(_ fraction: Double) -> Double {
            sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))].seconds * 1e3
        }
        print(
            String(
                format: "%@: n=%d p50=%.1f ms p95=%.1f ms p99=%.1f ms max=%.1f ms", name, samples.count,
                milliseconds(0.5), milliseconds(0.95), milliseconds(0.99), milliseconds(1.0)))
    }
}
