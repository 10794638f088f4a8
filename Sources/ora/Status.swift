import ArgumentParser
import Foundation
import ORAClient
import ORACore

extension ORACommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show whether the server is ready: its database and directory reachable.")

        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer (non-zero exit when not ready, as without it).") var json = false

        func run() async throws {
            let saved = Credentials.load()
            let base = try options.url(saved: saved)
            let client = APIClient(server: base, caFile: try options.trust(saved: saved))
            let readiness: Components.Schemas.Readiness
            do {
                switch try await client.api.readiness() {
                case .ok(let ready): readiness = try ready.body.json
                case .serviceUnavailable(let notReady): readiness = try notReady.body.json
                case .undocumented(let status, _):
                    throw fail("\(base) answered HTTP \(status), not an ora server", code: 3)
                }
            } catch {
                guard case .notUnderstood = CallFailure(error) else { throw client.failure(error) }
                throw fail("\(base) did not answer as an ora server", code: 3)
            }
            if json {
                try printJSON(readiness)
                if readiness.status != .ready { throw ExitCode(1) }
                return
            }
            print("server:    \(base) \(readiness.status == .ready ? "ready" : "NOT READY")")
            print("database:  \(readiness.database.summary)")
            print("directory: \(readiness.directory.summary)")
            for warning in readiness.warnings ?? [] { print("warning:   \(AuditText.escaped(warning))") }
            if readiness.status != .ready { throw ExitCode(1) }
        }
    }
}

extension Components.Schemas.ReadinessCheck {
    var summary: String { ready ? "ok" : "unavailable: \(error ?? "unknown reason")" }
}
