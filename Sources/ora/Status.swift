import ArgumentParser
import Foundation
import ORACore

extension ORACommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show whether the server is ready: its database and directory reachable.")

        @OptionGroup var options: ServerOption

        func run() async throws {
            let base = try options.url(saved: Credentials.load())
            let answer = try await APIClient(server: base).send("GET", "/readyz")
            guard let readiness = try? JSONDecoder().decode(ReadinessBody.self, from: Data(answer.body.utf8)) else {
                throw fail("\(base) answered HTTP \(answer.status), not an ora server", code: 3)
            }
            print("server:    \(base) \(readiness.status == "ready" ? "ready" : "NOT READY")")
            print("database:  \(readiness.database.summary)")
            print("directory: \(readiness.directory.summary)")
            for warning in readiness.warnings ?? [] { print("warning:   \(AuditText.escaped(warning))") }
            if readiness.status != "ready" { throw ExitCode(1) }
        }
    }
}

struct ReadinessBody: Decodable {
    struct Check: Decodable {
        var ready: Bool
        var error: String?
        var summary: String { ready ? "ok" : "unavailable: \(error ?? "unknown reason")" }
    }
    var status: String
    var database: Check
    var directory: Check
    var warnings: [String]?
}
