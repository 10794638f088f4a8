import ArgumentParser
import Foundation
import ORAClient
import ORACore

extension ORACommand {
    struct OperatorsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "operators",
            abstract: "See who is logged in, and end operators' sessions (administrators).",
            subcommands: [SessionsList.self, Revoke.self]
        )
    }
}

extension Components.Schemas.OperatorSession {
    /// One line: id, account, display name, source, since, until.
    var line: String {
        "\(id)  \(AuditText.escaped(account))  \(AuditText.escaped(displayName))  "
            + "from \(AuditText.escaped(source ?? "?"))  "
            + "since \(TimeText.local(createdAt))  until \(TimeText.local(expiresAt))"
    }
}

extension ORACommand.OperatorsCommand {
    struct SessionsList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sessions", abstract: "List live operator sessions (never their tokens).")
        @OptionGroup var options: ServerOption
        @Option(help: "Only this operator's (their account name or DN).") var `operator`: String?
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let sessions = try await authenticatedClient(options).call {
                try await $0.listOperatorSessions(query: .init(_operator: `operator`)).ok.body.json
            }
            if json { return try printJSON(sessions) }
            if sessions.isEmpty { return print("no live operator sessions") }
            for session in sessions { print(session.line) }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End one operator session, or all of an operator's, at once.",
            discussion: """
                The token stops working immediately; each revocation is in the audit log as \
                operator.session_revoked. The operator can log in again unless the directory account is locked.
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id (from 'ora operators sessions').") var session: String?
        @Option(help: "End every session of this operator (account name or DN).") var `operator`: String?
        @Option(help: "Why, kept in the audit log.") var reason: String?

        func validate() throws {
            guard (session == nil) != (`operator` == nil) else {
                throw ValidationError("name one session id, or --operator NAME for all of an operator's sessions")
            }
            if let session, UUID(uuidString: session) == nil {
                throw ValidationError("'\(session)' is not a session id")
            }
        }

        func run() async throws {
            let client = try authenticatedClient(options)
            let revoked = try await client.call { api in
                if let session {
                    try await api.revokeOperatorSession(
                        path: .init(id: session.lowercased()), body: .json(.init(reason: reason))
                    ).ok.body.json
                } else {
                    try await api.revokeOperatorSessions(
                        body: .json(.init(_operator: `operator` ?? "", reason: reason))
                    ).ok.body.json
                }
            }
            if revoked.isEmpty { return print("\(`operator` ?? "") has no live sessions") }
            for session in revoked { print("revoked \(session.line)") }
        }
    }
}
