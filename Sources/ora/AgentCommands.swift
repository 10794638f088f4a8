import ArgumentParser
import Foundation
import ORAClient
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

extension Components.Schemas.Machine {
    /// `enrolled`, or `revoked` with when.
    var status: String {
        revokedAt.map { "revoked \(TimeText.local($0))" } ?? "enrolled"
    }
}

extension ORACommand.AgentsCommand {
    struct TokenCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "Enrollment tokens.", subcommands: [Create.self, List.self, Revoke.self])
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List enrolled machines.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            // A page at a time, each after the last name of the one before, until a page is not full.
            let client = try authenticatedClient(options)
            let pageSize: Int64 = 1000
            var machines: [Components.Schemas.Machine] = []
            while true {
                let after = machines.last?.name
                let page = try await client.call {
                    try await $0.listEnrolledMachines(query: .init(limit: pageSize, after: after)).ok.body.json
                }
                machines += page
                if page.count < pageSize { break }
            }
            if json { return try printJSON(machines) }
            if machines.isEmpty { return print("no machines are enrolled") }
            for machine in machines {
                let seen = machine.lastSeenAt.map { "last seen \(TimeText.local($0))" } ?? "never connected"
                print(
                    "\(AuditText.escaped(machine.name))  \(machine.status)  \(AuditText.escaped(machine.os))  "
                        + "agent \(AuditText.escaped(machine.agentVersion))  \(seen)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one enrolled machine.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The machine's name.") var name: String
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let machine = try await authenticatedClient(options).call {
                try await $0.getMachine(path: .init(name: name)).ok.body.json
            }
            if json { return try printJSON(machine) }
            print("machine:       \(AuditText.escaped(machine.name))")
            print("computer:      \(AuditText.escaped(machine.computerDn))")
            print("status:        \(machine.status)\(machine.revokedBy.map { " by \(AuditText.escaped($0))" } ?? "")")
            print("os:            \(AuditText.escaped(machine.os))")
            print("agent:         \(AuditText.escaped(machine.agentVersion))")
            print("enrolled:      \(TimeText.local(machine.enrolledAt)) (token of \(machine.enrolledBy))")
            print("last seen:     \(machine.lastSeenAt.map { TimeText.local($0) } ?? "never")")
            print("device key:    \(machine.publicKey)")
            guard let doctor = machine.doctor else {
                print("doctor:        never reported (run ora-agent doctor on the machine)")
                return
            }
            let failed = doctor.checks.filter { !$0.ok }.count
            print(
                "doctor:        \(TimeText.local(doctor.checkedAt)): "
                    + (doctor.ok
                        ? "a session would work"
                        : "\(failed) problem\(failed == 1 ? "" : "s"): a session would not work"))
            for check in doctor.checks {
                print(
                    "  \(check.ok ? "ok  " : "FAIL") "
                        + AuditText.escaped(check.name).padding(toLength: 12, withPad: " ", startingAt: 0)
                        + AuditText.escaped(check.detail))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a machine: its agent cannot connect again until an administrator re-keys it.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The machine's name.") var name: String

        func run() async throws {
            let revocation = try await authenticatedClient(options).call {
                try await $0.revokeMachine(path: .init(name: name)).ok.body.json
            }
            print("\(revocation.machine) is revoked")
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

        func run() async throws {
            guard let lifetime = Duration(text: expires) else {
                throw ValidationError("--expires takes a duration such as 30m, 1h or 2d, not '\(expires)'")
            }
            let request = Components.Schemas.RekeyRequest(
                expiresInSeconds: lifetime.components.seconds, comment: comment)
            let created = try await authenticatedClient(options).call {
                try await $0.rekeyMachine(path: .init(name: name), body: .json(request)).created.body.json
            }
            print(created.token)
            FileHandle.standardError.write(
                Data(
                    ("re-keys \(created.machine ?? name.lowercased()) once, until "
                        + "\(TimeText.local(created.expiresAt)); on the machine run: "
                        + "ora-agent enroll --server URL --token TOKEN\n").utf8))
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
            let request = Components.Schemas.EnrollmentTokenRequest(
                machine: machine, ou: ou, group: group, expiresInSeconds: lifetime.components.seconds, uses: uses,
                comment: comment)
            let created = try await authenticatedClient(options).call {
                try await $0.createEnrollmentToken(body: .json(request)).created.body.json
            }
            print(created.token)
            let bound =
                created.machine.map { "machine \($0)" } ?? created.ou.map { "computers below \($0)" }
                ?? created.group.map { "members of \($0)" } ?? "?"
            FileHandle.standardError.write(
                Data(
                    ("enrolls \(bound); valid until \(TimeText.local(created.expiresAt)) for \(created.uses) "
                        + "enrollment\(created.uses == 1 ? "" : "s"); on the machine run: "
                        + "ora-agent enroll --server URL --token TOKEN\n").utf8))
        }
    }
}

extension ORACommand.AgentsCommand.TokenCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the enrollment tokens still good, and those made or ended in the last 30 days.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let tokens = try await authenticatedClient(options).call {
                try await $0.listEnrollmentTokens().ok.body.json
            }
            if json { return try printJSON(tokens) }
            if tokens.isEmpty { return print("no enrollment tokens in the last 30 days") }
            for token in tokens {
                let state =
                    token.revokedAt.map { "revoked \(TimeText.local($0))" }
                    ?? (token.usesLeft == 0
                        ? "used up"
                        : token.expiresAt <= Date()
                            ? "expired" : "good until \(TimeText.local(token.expiresAt)), \(token.usesLeft) left")
                print(
                    "\(token.id)  \(token.boundKind.rawValue) \(AuditText.escaped(token.boundTo))  "
                        + "\(token.purpose.rawValue)  \(state)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an enrollment token at once: it enrolls nothing from then on.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The token's id (from 'ora agents token list').") var id: String

        func validate() throws {
            guard UUID(uuidString: id) != nil else { throw ValidationError("'\(id)' is not a token id") }
        }

        func run() async throws {
            let revoked = try await authenticatedClient(options).call {
                try await $0.revokeEnrollmentToken(path: .init(id: id.lowercased())).ok.body.json
            }
            print(
                "the token \(revoked.id) for \(revoked.boundKind.rawValue) \(AuditText.escaped(revoked.boundTo)) is revoked"
            )
        }
    }
}
