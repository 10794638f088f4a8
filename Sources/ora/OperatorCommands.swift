import ArgumentParser
import Foundation
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

/// A live operator session as the server answers it.
struct OperatorSessionAnswer: Decodable {
    var id: String
    var operator_dn: String
    var account: String
    var display_name: String
    var source: String?
    var created_at: Date
    var expires_at: Date
    var checked_at: Date

    /// One line: id, account, display name, source, since, until.
    var line: String {
        "\(id)  \(AuditText.escaped(account))  \(AuditText.escaped(display_name))  from \(AuditText.escaped(source ?? "?"))  "
            + "since \(created_at.formatted(.iso8601))  until \(expires_at.formatted(.iso8601))"
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
            var path = "/api/v1/operators/sessions"
            if let name = `operator` {
                path += "?operator=" + (name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name)
            }
            let answer = try await authenticatedClient(options).send("GET", path)
            guard answer.status == 200 else { throw answer.failure() }
            if json { return print(answer.body) }
            let sessions = try answer.decode([OperatorSessionAnswer].self)
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

        struct Body: Encodable {
            var `operator`: String?
            var reason: String?
        }

        func run() async throws {
            let client = try await authenticatedClient(options)
            let answer =
                if let session {
                    try await client.send(
                        "POST", "/api/v1/operators/sessions/\(session.lowercased())/revoke",
                        encoding: Body(reason: reason))
                } else {
                    try await client.send("POST", "/api/v1/operators/revoke", encoding: Body(operator: `operator`, reason: reason))
                }
            guard answer.status == 200 else { throw answer.failure() }
            let revoked = try answer.decode([OperatorSessionAnswer].self)
            if revoked.isEmpty { return print("\(`operator` ?? "") has no live sessions") }
            for session in revoked { print("revoked \(session.line)") }
        }
    }
}
