import ArgumentParser
import Foundation
import ORAClient

extension ORACommand {
    struct Open: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open the console in your browser, already logged in; with a session id, on its page.",
            discussion: """
                Asks the server for a one-time login link for your session and opens it with xdg-open. The link \
                works once, within a minute, and logs the browser in as you; it is not your token. Without a \
                desktop (or with --print) the link is printed for you to open yourself.
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "A session's id: open its page instead of the machines.") var id: String?
        @Flag(help: "Print the link instead of opening it.") var print = false

        func validate() throws {
            if let id { _ = try sessionID(id) }
        }

        func run() async throws {
            let client = try authenticatedClient(options)
            var target = "/"
            if let id { target = "/sessions/" + (try await resolveSession(id, client: client)) }
            let link = try await client.call {
                try await $0.createLoginLink(body: .json(.init(target: target))).created.body.json
            }
            let server = client.server.hasSuffix("/") ? String(client.server.dropLast()) : client.server
            let address = server + link.path
            let environment = ProcessInfo.processInfo.environment
            let desktop = environment["DISPLAY"] != nil || environment["WAYLAND_DISPLAY"] != nil
            if print || !desktop || !Self.open(address) {
                Swift.print("open this address in your browser within a minute (it works once):")
                Swift.print(address)
                return
            }
            Swift.print("opened \(server)\(target) in your browser")
        }

        /// Opens `address` with the desktop's browser; whether xdg-open ran and succeeded.
        private static func open(_ address: String) -> Bool {
            let opener = Process()
            opener.executableURL = URL(fileURLWithPath: "/usr/bin/xdg-open")
            opener.arguments = [address]
            opener.standardOutput = FileHandle.nullDevice
            opener.standardError = FileHandle.nullDevice
            do {
                try opener.run()
            } catch {
                return false
            }
            opener.waitUntilExit()
            return opener.terminationStatus == 0
        }
    }
}
