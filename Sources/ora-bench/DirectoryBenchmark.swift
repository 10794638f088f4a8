// Benchmarks: operator login and authorisation against a real slapd; policy evaluation and parsing.
//
// Usage:
//   swift build -c release --product ora-bench
//   .build/release/ora-bench [seconds]   directory: with the settings of `Deploy/dev/services up` in the environment
//   .build/release/ora-bench policy      policy evaluation and parsing; needs nothing else
//   .build/release/ora-bench audit [seconds] [events]   pgbench, the audit writer and search over `events` (10M)
//   .build/release/ora-bench agents [count] [offers]     memory per agent, offer latency, reconnection (10k, 1000)
//   .build/release/ora-bench relay [MiB] [round trips] [sessions] [seconds]   the screen relay beside a direct
//       connection, socat and websockify; then concurrent sessions at 3 MB/s (1024, 2000, 200, 10)
//   .build/release/ora-bench faults [agents] [seconds]  two replicas under load while PostgreSQL, slapd, a replica and
//       agent connections fail; then the audit record against what was acknowledged (1000, 150)
import Foundation
import Logging
import NIOPosix
import ORACore
import ORADirectory

@main
struct DirectoryBenchmark {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "policy" {
            try PolicyBenchmark.run()
            return
        }
        if arguments.first == "agents" {
            try await AgentsBenchmark.run(
                count: arguments.count > 1 ? Int(arguments[1]) ?? 10_000 : 10_000,
                offers: arguments.count > 2 ? Int(arguments[2]) ?? 1_000 : 1_000)
            return
        }
        if arguments.first == "relay" {
            try await RelayBenchmark.run(
                megabytes: arguments.count > 1 ? Int(arguments[1]) ?? 1024 : 1024,
                pings: arguments.count > 2 ? Int(arguments[2]) ?? 2000 : 2000,
                sessions: arguments.count > 3 ? Int(arguments[3]) ?? 200 : 200,
                seconds: arguments.count > 4 ? Int(arguments[4]) ?? 10 : 10)
            return
        }
        if arguments.first == "faults" {
            try await FaultsBenchmark.run(
                count: arguments.count > 1 ? Int(arguments[1]) ?? 1_000 : 1_000,
                seconds: arguments.count > 2 ? Int(arguments[2]) ?? 150 : 150)
            return
        }
        if arguments.first == "audit" {
            try await AuditBenchmark.run(
                seconds: arguments.count > 1 ? Double(arguments[1]) ?? 10 : 10,
                events: arguments.count > 2 ? Int(arguments[2]) ?? 10_000_000 : 10_000_000)
            return
        }
        // Measure off the main actor, where the server's request handlers run too: awaiting from the main actor
        // would add two thread hops to every sample.
        try await measure()
    }

    nonisolated static func measure() async throws {
        let environment = ProcessInfo.processInfo.environment
        func setting(_ name: String) -> String {
            guard let value = environment[name], !value.isEmpty else {
                FileHandle.standardError.write(
                    Data("ora-bench: \(name) is not set; run Deploy/dev/services up and source its env file\n".utf8))
                exit(2)
            }
            return value
        }
        let seconds = Double(CommandLine.arguments.dropFirst().first ?? "") ?? 10
        let password = try String(contentsOfFile: setting("ORA_LDAP_PASSWORD_FILE"), encoding: .utf8)
            .trimmingCharacters(in: .newlines)
        var logger = Logger(label: "ora-bench")
        logger.logLevel = .warning
        let threads = NIOThreadPool(numberOfThreads: 16)
        threads.start()

        func client(cacheTTL: Duration) -> DirectoryClient {
            DirectoryClient(
                settings: DirectorySettings(
                    uris: [setting("ORA_LDAP_URI")], baseDN: setting("ORA_LDAP_BASE_DN"),
                    bindDN: setting("ORA_LDAP_BIND_DN"), bindPassword: password, poolSize: 16, cacheTTL: cacheTTL),
                threadPool: threads, logger: logger)
        }
        let users = ["hannah.fischer", "tom.berger", "lena.wolf", "omar.haddad", "sara.klein", "peter.schmidt"]

        // 1. Login, cold cache: search + bind + nested group resolution, one at a time.
        let cold = client(cacheTTL: .zero)
        for user in users { _ = try await login(cold, user) }  // open the pooled connections
        var latencies: [Duration] = []
        let clock = ContinuousClock()
        for index in 0..<2_000 {
            let user = users[index % users.count]
            latencies.append(try await clock.measure { _ = try await login(cold, user) })
        }
        report("login (search + bind + groups, cold cache), sequential", latencies)

        // 2. Authorisation with a warm cache: groups from the cache and roles from them.
        let warm = client(cacheTTL: .seconds(60))
        let roles = RoleAssignments(
            administrators: [try DistinguishedName("cn=RA Admins,ou=Groups,dc=corp,dc=example")],
            auditors: [try DistinguishedName("cn=Security,ou=Groups,dc=corp,dc=example")])
        let dn = try DistinguishedName("uid=hannah.fischer,ou=People,dc=corp,dc=example")
        _ = try await warm.groups(of: dn)
        var authorisations: [Duration] = []
        for _ in 0..<100_000 {
            authorisations.append(
                try await clock.measure { _ = roles.roles(forGroups: try await warm.groups(of: dn)) })
        }
        report("authorisation (groups + roles, warm cache)", authorisations)

        // 3. Sustained logins from 32 concurrent callers.
        let deadline = clock.now + .seconds(seconds)
        let results = await withTaskGroup(of: (Int, Int).self) { group in
            for worker in 0..<32 {
                group.addTask {
                    var succeeded = 0
                    var failed = 0
                    var index = worker
                    while clock.now < deadline {
                        do {
                            _ = try await login(cold, users[index % users.count])
                            succeeded += 1
                        } catch {
                            failed += 1
                        }
                        index += 1
                    }
                    return (succeeded, failed)
                }
            }
            var total = (0, 0)
            for await result in group { total = (total.0 + result.0, total.1 + result.1) }
            return total
        }
        print(
            String(
                format: "sustained logins, 32 concurrent, %.0f s: %d succeeded, %d failed, %.0f logins/s",
                seconds, results.0, results.1, Double(results.0) / seconds))
        try await threads.shutdownGracefully()
    }

    static func login(_ client: DirectoryClient, _ user: String) async throws -> Set<DistinguishedName> {
        let person = try await client.authenticate(user: user, password: "ora-demo")
        return try await client.groups(of: DistinguishedName(person.dn))
    }

    static func report(_ name: String, _ samples: [Duration]) {
        let sorted = samples.sorted()
        func microseconds(_ fraction: Double) -> Double {
            let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
            return value.seconds * 1e6
        }
        print(
            String(
                format: "%@: n=%d p50=%.1f µs p99=%.1f µs max=%.1f µs", name, samples.count, microseconds(0.5),
                microseconds(0.99), microseconds(1.0)))
    }
}
