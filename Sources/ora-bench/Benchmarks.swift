// ora-bench: the benchmarks of ora, one for each first argument.
//
// Usage:
//   swift build -c release --product ora-bench
//   .build/release/ora-bench [seconds]   operator login and authorisation against slapd: with the settings of
//       `Deploy/dev/services up` in the environment
//   .build/release/ora-bench policy      policy evaluation and parsing; needs nothing else
//   .build/release/ora-bench audit [seconds] [events]   pgbench, the audit writer and search over `events` (10M)
//   .build/release/ora-bench agents [count] [offers] [--tls] [--openings N]   memory per agent, processor time of
//       idle agents, offer latency, reconnection (10k, 1000); with --tls, over the server's own TLS; with
//       --openings, the server's listen.openings_per_address (all simulated agents connect from one address)
//   .build/release/ora-bench relay [MiB] [round trips] [sessions] [seconds]   the screen relay beside a direct
//       connection, socat and websockify; then concurrent sessions at 3 MB/s (1024, 2000, 200, 10)
//   .build/release/ora-bench console [machines] [events]   machine search, the audit timeline, exports and the
//       machine page in Chromium, with 10,000 machines and 10 million audit events; from the package root
//   .build/release/ora-bench chat [sessions] [seconds] [--together]   chat through one server, one line a second
//       each way in every session, each session at its own moment in the second (with --together, every session
//       at the same instant): delivery time, lines lost or out of order, server CPU (500, 60)
//   .build/release/ora-bench queue [watchers] [invitations]   the helpdesk's queue: how soon every watching helper
//       sees an invitation a machine sends, and taking it with two helpers at once (200, 200)
//   .build/release/ora-bench faults [agents] [seconds]  two replicas under load while PostgreSQL, slapd, a replica and
//       agent connections fail; then the audit record against what was acknowledged (1000, 150)
@main
struct Benchmarks {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        /// The number at `index` (after the benchmark's name), or `fallback` when it is not given or not a number.
        func number<Value: LosslessStringConvertible>(_ index: Int, _ fallback: Value) -> Value {
            index < arguments.count ? Value(arguments[index]) ?? fallback : fallback
        }
        switch arguments.first {
        case "policy":
            try PolicyBenchmark.run()
        case "agents":
            let openings = arguments.firstIndex(of: "--openings").flatMap {
                $0 + 1 < arguments.count ? Int(arguments[$0 + 1]) : nil
            }
            try await AgentsBenchmark.run(
                count: number(1, 10_000), offers: number(2, 1_000), tls: arguments.contains("--tls"),
                openingsPerAddress: openings)
        case "relay":
            try await RelayBenchmark.run(
                megabytes: number(1, 1024), pings: number(2, 2000), sessions: number(3, 200), seconds: number(4, 10))
        case "chat":
            try await ChatBenchmark.run(
                sessions: number(1, 500), seconds: number(2, 60), together: arguments.contains("--together"))
        case "queue":
            try await QueueBenchmark.run(watchers: number(1, 200), invitations: number(2, 200))
        case "faults":
            try await FaultsBenchmark.run(count: number(1, 1_000), seconds: number(2, 150))
        case "console":
            try await ConsoleBenchmark.run(machines: number(1, 10_000), events: number(2, 10_000_000))
        case "audit":
            try await AuditBenchmark.run(seconds: number(1, 10.0), events: number(2, 10_000_000))
        default:
            try await DirectoryBenchmark.run()
        }
    }
}
