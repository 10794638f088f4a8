import ArgumentParser
import Foundation
import ORACore

extension ORACommand {
    struct AgentsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agents",
            abstract: "Enroll and manage the agents on domain machines (administrators).",
            subcommands: [TokenCommand.self, List.self, Show.self, Revoke.self, Rekey.self]
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
            abstract: "Revoke a machine: its agent cannot connect again until an administrator re-keys it.")
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

extension ORACommand.AgentsCommand {
    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let an enrolled or revoked machine enroll again with a new device key.",
            discussion: """
                Prints a single-use token bound to that machine. Its agent enrolls with it (ora-agent enroll), the old \
                key stops working and a revocation is lifted; both key fingerprints are audited.
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The machine's name.") var name: String
        @Option(help: "How long the token is valid: 30m, 1h, 2d (at most 7d).") var expires: String = "1h"
        @Option(help: "Why, kept with the token (a ticket, say).") var comment: String?

        struct Body: Encodable {
            var expires_in_seconds: Int64
            var comment: String?
        }

        func run() async throws {
            guard let lifetime = Duration(text: expires) else {
                throw ValidationError("--expires takes a duration such as 30m, 1h or 2d, not '\(expires)'")
            }
            let path =
                "/api/v1/agents/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
                + "/rekey"
            let answer = try await authenticatedClient(options).send(
                "POST", path, encoding: Body(expires_in_seconds: lifetime.components.seconds, comment: comment))
            guard answer.status == 201 else { throw answer.failure() }
            let created = try answer.decode(ORACommand.AgentsCommand.TokenCommand.Create.Created.self)
            print(created.token)
            FileHandle.standardError.write(
                Data(
                    "re-keys \(created.machine ?? name.lowercased()) once, until \(created.expires_at.formatted(.iso8601)); on the machine run: ora-agent enroll --server URL --token TOKEN\n"
                        .utf8))
        }
    }
}

extension ORACommand.AgentsCommand.TokenCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an enrollment token; it is printed once and stored only as a hash.",
            discussion: """
                A token enrolls only what it is bound to: one machine (--machine), the computers below an \
                organisational unit (--ou) or the members of a computer group (--group). It never replaces the key \
                of a machine that is enrolled or revoked already: that takes 'ora agents rekey'.
                """)
        @OptionGroup var options: ServerOption
        @Option(help: "The one machine it may enroll (one use).") var machine: String?
        @Option(help: "The organisational unit (DN) whose computers it may enroll.") var ou: String?
        @Option(help: "The computer group (DN) whose members it may enroll.") var group: String?
        @Option(help: "How long the token is valid: 30m, 1h, 7d (at most 30d).") var expires: String = "1h"
        @Option(help: "How many machines may enroll with it.") var uses: Int = 1
        @Option(help: "What it is for, kept with the token.") var comment: String?

        struct Body: Encodable {
            var expires_in_seconds: Int64
            var uses: Int
            var comment: String?
            var machine: String?
            var ou: String?
            var group: String?
        }
        struct Created: Decodable {
            var token: String
            var expires_at: Date
            var uses: Int
            var machine: String?
            var ou: String?
            var group: String?
        }

        func validate() throws {
            guard [machine, ou, group].compactMap({ $0 }).count == 1 else {
                throw ValidationError(
                    "say what the token may enroll: exactly one of --machine NAME, --ou DN or --group DN")
            }
        }

        func run() async throws {
            guard let lifetime = Duration(text: expires) else {
                throw ValidationError("--expires takes a duration such as 30m, 1h or 7d, not '\(expires)'")
            }
            let answer = try await authenticatedClient(options).send(
                "POST", "/api/v1/agents/tokens",
                encoding: Body(
                    expires_in_seconds: lifetime.components.seconds, uses: uses, comment: comment, machine: machine,
                    ou: ou, group: group))
            guard answer.status == 201 else { throw answer.failure() }
            let created = try answer.decode(Created.self)
            print(created.token)
            let bound =
                created.machine.map { "machine \($0)" } ?? created.ou.map { "computers below \($0)" }
                ?? created.group.map { "members of \($0)" } ?? "?"
            FileHandle.standardError.write(
                Data(
                    "enrolls \(bound); valid until \(created.expires_at.formatted(.iso8601)) for \(created.uses) enrollment\(created.uses == 1 ? "" : "s"); on the machine run: ora-agent enroll --server URL --token TOKEN\n"
                        .utf8))
        }
    }
}
