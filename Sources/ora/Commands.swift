import ArgumentParser
import Foundation
import ORACore

extension ORACommand {
    struct Login: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Log in with your directory account; the session is saved for the other commands.")

        @OptionGroup var options: ServerOption
        @Option(name: .long, help: "Your directory user name.")
        var user: String
        @Flag(name: .long, help: "Read the password from standard input instead of asking for it.")
        var passwordStdin = false

        func run() async throws {
            let server = try options.url()
            let password: String
            if passwordStdin {
                password = Terminal.readPasswordFromStandardInput()
            } else {
                guard let typed = Terminal.readPassword(prompt: "Password for \(user): ") else {
                    throw fail("no terminal to ask for the password on; use --password-stdin", code: 2)
                }
                password = typed
            }
            let client = APIClient(server: server)
            let answer = try await client.send("POST", "/api/v1/login", json: ["user": user, "password": password])
            guard answer.status == 200 else { throw answer.failure() }
            let result = try answer.decode(LoginAnswer.self)
            try Credentials(
                server: server, token: result.token, account: result.person.account, expiresAt: result.expiresAt
            )
            .save()
            print(
                "Logged in to \(server) as \(result.person.displayName) (\(result.person.account)) until \(result.expiresAt.formatted(date: .abbreviated, time: .shortened))."
            )
        }
    }

    struct WhoAmI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "whoami", abstract: "Show who you are logged in as, your groups and your roles.")

        @OptionGroup var options: ServerOption
        @Flag(name: .long, help: "Print the server's JSON answer.")
        var json = false

        func run() async throws {
            let answer = try await authenticatedClient(options).send("GET", "/api/v1/me")
            guard answer.status == 200 else { throw answer.failure() }
            if json {
                print(answer.body)
                return
            }
            let identity = try answer.decode(IdentityAnswer.self)
            print("\(identity.person.displayName) (\(identity.person.account))")
            print("  dn:      \(identity.person.dn)")
            if let mail = identity.person.mail { print("  mail:    \(mail)") }
            print("  roles:   \(identity.roles.isEmpty ? "none" : identity.roles.joined(separator: ", "))")
            print("  session: until \(identity.expiresAt.formatted(date: .abbreviated, time: .shortened))")
            print("  groups:")
            for group in identity.groups { print("    \(group)") }
        }
    }

    struct Logout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End your session on the server and forget it here.")

        @OptionGroup var options: ServerOption

        func run() async throws {
            guard let saved = Credentials.load() else {
                print("Not logged in.")
                return
            }
            let client = APIClient(server: try options.url(saved: saved), token: saved.token)
            let answer = try await client.send("POST", "/api/v1/logout")
            // An expired or already ended session is logged out too; only outages keep the saved token.
            guard answer.status == 204 || answer.status == 401 else { throw answer.failure() }
            Credentials.remove()
            print("Logged out.")
        }
    }
}

struct LoginAnswer: Decodable {
    var token: String
    var expiresAt: Date
    var person: Operator

    enum CodingKeys: String, CodingKey {
        case token
        case expiresAt = "expires_at"
        case person = "operator"
    }
}

struct IdentityAnswer: Decodable {
    var person: Operator
    var groups: [String]
    var roles: [String]
    var expiresAt: Date

    enum CodingKeys: String, CodingKey {
        case person = "operator"
        case groups, roles
        case expiresAt = "expires_at"
    }
}
