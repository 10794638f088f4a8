import ArgumentParser
import Foundation
import ORAClient

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
            let caFile = try options.trust()
            let password: String
            if passwordStdin {
                password = Terminal.readPasswordFromStandardInput()
            } else {
                guard let typed = Terminal.readPassword(prompt: "Password for \(user): ") else {
                    throw fail("no terminal to ask for the password on; use --password-stdin", code: 2)
                }
                password = typed
            }
            let result = try await APIClient(server: server, caFile: caFile).call {
                try await $0.login(body: .json(.init(user: user, password: password))).ok.body.json
            }
            let person = result._operator
            try Credentials(
                server: server, token: result.token, account: person.account, expiresAt: result.expiresAt,
                caFile: caFile
            ).save()
            print(
                "Logged in to \(server) as \(person.displayName) (\(person.account)) until "
                    + "\(TimeText.local(result.expiresAt)).")
        }
    }

    struct WhoAmI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "whoami", abstract: "Show who you are logged in as, your groups and your roles.")

        @OptionGroup var options: ServerOption
        @Flag(name: .long, help: "Print the server's JSON answer.")
        var json = false

        func run() async throws {
            let identity = try await authenticatedClient(options).call { try await $0.getMe().ok.body.json }
            if json { return try printJSON(identity) }
            let person = identity._operator
            print("\(person.displayName) (\(person.account))")
            print("  dn:      \(person.dn)")
            if let mail = person.mail { print("  mail:    \(mail)") }
            let roles = identity.roles.map(\.rawValue)
            print("  roles:   \(roles.isEmpty ? "none" : roles.joined(separator: ", "))")
            print("  session: until \(TimeText.local(identity.expiresAt))")
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
            let client = APIClient(
                server: try options.url(saved: saved), token: saved.token, caFile: try options.trust(saved: saved))
            do {
                _ = try await client.api.logout().noContent
            } catch {
                // An expired or already ended session is logged out too; only outages keep the saved token.
                guard case .refused(let refusal) = CallFailure(error), refusal.status == 401 else {
                    throw client.failure(error)
                }
            }
            Credentials.remove()
            print("Logged out.")
        }
    }
}
