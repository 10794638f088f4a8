import ArgumentParser
import Foundation
import ORACore

extension ORACommand {
    struct AgentsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agents",
            abstract: "Enroll and manage the agents on domain machines (administrators).",
            subcommands: [TokenCommand.self, List.self, Show.self, Revoke.self]
        )
    }
}

/// An enrolled machine as the server answers it.
struct MachineAnswer: Decodable {
    var name: String
    var computerDN: String
    var operatingSystem: String
    var agentVersion: String
    var publicKey: String
    var enrolledAt: Date
    var enrolledBy: String
    var revokedAt: Date?
    var revokedBy: String?
    var lastSeenAt: Date?

    enum CodingKeys: String, CodingKey {
        case name
        case computerDN = "computer_dn"
        case operatingSystem = "os"
        case agentVersion = "agent_version"
        case publicKey = "public_key"
        case enrolledAt = "enrolled_at"
        case enrolledBy = "enrolled_by"
        case revokedAt = "revoked_at"
        case revokedBy = "revoked_by"
        case lastSeenAt = "last_seen_at"
    }

    /// `enrolled`, or `revoked` with when.
    var status: String {
        revokedAt.map { "revoked \($0.formatted(.iso8601))" } ?? "enrolled"
    }
}

extension ORACommand.AgentsCommand {
    struct TokenCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "Enrollment tokens.", subcommands: [Create.self])
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List enrolled machines.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let answer = try await authenticatedClient(options).send("GET", "/api/v1/agents")
            guard answer.status == 200 else { throw answer.failure() }
            if json { return print(answer.body) }
            let machines = try answer.decode([MachineAnswer].self)
            if machines.isEmpty { return print("no machines are enrolled") }
            for machine in machines {
                let seen = machine.lastSeenAt.map { "last seen \($0.formatted(.iso8601))" } ?? "never connected"
                print(
                    "\(AuditText.escaped(machine.name))  \(machine.status)  \(AuditText.escaped(machine.operatingSystem))  "
                        + "agent \(AuditText.escaped(machine.agentVersion))  \(seen)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one enrolled machine.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The machine's name.") var name: String

        func run() async throws {
            let path = "/api/v1/agents/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
            let answer = try await authenticatedClient(options).send("GET", path)
            guard answer.status == 200 else { throw answer.failure() }
            let machine = try answer.decode(MachineAnswer.self)
            print("machine:       \(AuditText.escaped(machine.name))")
            print("computer:      \(AuditText.escaped(machine.computerDN))")
            print("status:        \(machine.status)\(machine.revokedBy.map { " by \(AuditText.escaped($0))" } ?? "")")
            print("os:            \(AuditText.escaped(machine.operatingSystem))")
            print("agent:         \(AuditText.escaped(machine.agentVersion))")
            print("enrolled:      \(machine.enrolledAt.formatted(.iso8601)) (token of \(machine.enrolledBy))")
            print("last seen:     \(machine.lastSeenAt.map { $0.formatted(.iso8601) } ?? "never")")
            print("device key:    \(machine.publicKey)")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a machine: its agent cannot connect again until it enrolls with a new token.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The machine's name.") var name: String

        func run() async throws {
            let path =
                "/api/v1/agents/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
                + "/revoke"
            let answer = try await authenticatedClient(options).send("POST", path, body: nil)
            guard answer.status == 200 else { throw answer.failure() }
            print("\(name.lowercased()) is revoked")
        }
    }
}

extension ORACommand.AgentsCommand.TokenCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a one-time enrollment token; it is printed once and stored only as a hash.")
        @OptionGroup var options: ServerOption
        @Option(help: "How long the token is valid: 30m, 1h, 7d (at most 30d).") var expires: String = "1h"
        @Option(help: "How many machines may enroll with it.") var uses: Int = 1
        @Option(help: "What it is for, kept with the token.") var comment: String?

        struct Body: Encodable {
            var expires_in_seconds: Int64
            var uses: Int
            var comment: String?
        }
        struct Created: Decodable {
            var token: String
            var expires_at: Date
            var uses: Int
        }

        func run() async throws {
            guard let lifetime = Duration(text: expires) else {
                throw ValidationError("--expires takes a duration such as 30m, 1h or 7d, not '\(expires)'")
            }
            let answer = try await authenticatedClient(options).send(
                "POST", "/api/v1/agents/tokens",
                encoding: Body(expires_in_seconds: lifetime.components.seconds, uses: uses, comment: comment))
            guard answer.status == 201 else { throw answer.failure() }
            let created = try answer.decode(Created.self)
            print(created.token)
            FileHandle.standardError.write(
                Data(
                    "valid until \(created.expires_at.formatted(.iso8601)) for \(created.uses) enrollment\(created.uses == 1 ? "" : "s"); on the machine run: ora-agent enroll --server URL --token TOKEN\n"
                        .utf8))
        }
    }
}
