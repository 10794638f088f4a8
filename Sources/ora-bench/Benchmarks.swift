// ora-bench: the benchmarks of ora, one for each first argument.
//
// Usage:
//   swift build -c release --product ora-bench
//   .build/release/ora-bench [seconds]   operator login and authorisation against slapd: with the settings of
//       `Deploy/dev/services up` in the environment
//   .build/release/ora-bench policy      policy evaluation and parsing; needs nothing else
//   .build/release/ora-bench audit [seconds] [events]   pgbench, the audit writer and search over `events` (10M)
//   .build/release/ora-bench agents [count] [offers]     memory per agent, offer latency, reconnection (10k, 1000)
//   .build/release/ora-bench relay [MiB] [round trips] [sessions] [seconds]   the screen relay beside a direct
//       connection, socat and websockify; then concurrent sessions at 3 MB/s (1024, 2000, 200, 10)
//   .build/release/ora-bench faults [agents] [seconds]  two replicas under load while PostgreSQL, slapd, a replica and
//       agent connections fail; then the audit record against what was acknowledged (1000, 150)
@main
struct Benchmarks {
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
        try await DirectoryBenchmark.run()
    }
}
