// Benchmark: operator login and authorisation against a real slapd, with the settings of
// `Deploy/dev/services up` in the environment (`ora-bench [seconds]`; Benchmarks.swift lists the others).
import Foundation
import Logging
import NIOPosix
import ORACore
import ORADirectory

enum DirectoryBenchmark {
    /// Measures off the main actor, where the server's request handlers run too: awaiting from the main actor would
    /// add two thread hops to every sample.
    static func run() async throws {
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
