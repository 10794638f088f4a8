import ArgumentParser
import Foundation
import ORACore

@main
struct ORACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ora",
        abstract: "Command line for ora: helpdesk, security team and administrators.",
        version: "0.1.0",
        subcommands: [
            Login.self, WhoAmI.self, Logout.self, Status.self, Machines.self, OfferCommand.self, Sessions.self,
            SessionCommand.self, Connect.self, Open.self, PolicyCommand.self, AuditCommand.self, AgentsCommand.self,
            OperatorsCommand.self, InvitationCommand.self, InvitationsCommand.self,
        ]
    )
}

struct ServerOption: ParsableArguments {
    @Option(name: .long, help: "The ora server's URL (or set ORA_SERVER).")
    var server: String?
    @Option(
        name: .customLong("ca-file"),
        help: ArgumentHelp(
            "A PEM file of the CA to verify the server with, instead of the system's CAs (or set ORA_CA_FILE).",
            discussion: "Only certificates it signed are accepted. A server's own self-signed certificate given here "
                + "pins that certificate. Kept with the login for the other commands."))
    var caFile: String?

    /// The server from `--server`, `ORA_SERVER`, or the saved login, in that order.
    func url(saved: Credentials? = nil) throws -> String {
        let candidates = [server, ProcessInfo.processInfo.environment["ORA_SERVER"], saved?.server]
        guard let url = candidates.compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw ValidationError("no server given: use --server URL or set ORA_SERVER")
        }
        guard let checked = ServerURL.checked(url) else { throw ValidationError(ServerURL.refusal(url)) }
        return checked
    }

    /// The CA file from `--ca-file`, `ORA_CA_FILE`, or the saved login, in that order; nil for the system's CAs.
    func trust(saved: Credentials? = nil) throws -> String? {
        let candidates = [caFile, ProcessInfo.processInfo.environment["ORA_CA_FILE"], saved?.caFile]
        guard let file = candidates.compactMap({ $0 }).first(where: { !$0.isEmpty }) else { return nil }
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ValidationError("cannot read the CA file \(file)")
        }
        // Kept with the login, the path must still name the file when the command runs from elsewhere.
        return file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
    }
}

/// A logged-in client, from the saved credentials.
/// - Parameter timeout: how long a whole answer may take.
func authenticatedClient(_ options: ServerOption, timeout: Duration = .seconds(30)) throws -> APIClient {
    guard let saved = Credentials.load() else { throw fail("not logged in; run: ora login --user NAME", code: 4) }
    return APIClient(
        server: try options.url(saved: saved), token: saved.token, caFile: try options.trust(saved: saved),
        timeout: timeout)
}

/// Prints an error for the person at the terminal and exits with `code`.
func fail(_ message: String, code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("ora: error: \(message)\n".utf8))
    return ExitCode(code)
}
