import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

@main
struct ORACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ora",
        abstract: "Command line for ora: helpdesk, security team and administrators.",
        version: "0.1.0",
        subcommands: [Status.self]
    )
}

struct ServerOption: ParsableArguments {
    @Option(name: .long, help: "The ora server's URL (or set ORA_SERVER).")
    var server: String?

    var url: String {
        get throws {
            guard let url = server ?? ProcessInfo.processInfo.environment["ORA_SERVER"], !url.isEmpty else {
                throw ValidationError("no server given: use --server URL or set ORA_SERVER")
            }
            return url.hasSuffix("/") ? String(url.dropLast()) : url
        }
    }
}

extension ORACommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show whether the server is ready: its database and directory reachable.")

        @OptionGroup var options: ServerOption

        func run() async throws {
            let base = try options.url
            let body: String
            let code: UInt
            do {
                let request = HTTPClientRequest(url: base + "/readyz")
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
                code = response.status.code
                body = String(buffer: try await response.body.collect(upTo: 64 * 1024))
            } catch {
                FileHandle.standardError.write(Data("ora: error: cannot reach \(base): \(error)\n".utf8))
                throw ExitCode(3)
            }
            guard let readiness = try? JSONDecoder().decode(ReadinessBody.self, from: Data(body.utf8)) else {
                FileHandle.standardError.write(
                    Data("ora: error: \(base) answered HTTP \(code), not an ora server\n".utf8))
                throw ExitCode(3)
            }
            print("server:    \(base) \(readiness.status == "ready" ? "ready" : "NOT READY")")
            print("database:  \(readiness.database.summary)")
            print("directory: \(readiness.directory.summary)")
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
}
