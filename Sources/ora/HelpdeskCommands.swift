import ArgumentParser
import Foundation
import ORAClient
import ORACore
import OpenAPIRuntime

/// A session as the server answers it.
typealias SessionAnswer = Components.Schemas.Session

extension Components.Schemas.Session {
    /// What the state means, for the helper.
    var sentence: String {
        switch state {
        case .offered: "offered; on its way to \(machine)"
        case .awaitingConsent: "waiting for the person at \(machine) to answer"
        case .viewing: "accepted: you see the screen of \(machine) (view only)"
        case .controlRequested: "waiting for the person at \(machine) to grant control"
        case .controlling: "control granted: you may use keyboard and mouse on \(machine)"
        case .ended:
            "ended: "
                + (endReason.flatMap { SessionEndReason(rawValue: $0.rawValue) }?.explanation ?? "unknown reason")
        }
    }
}

extension ORACommand {
    struct Machines: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Search enrolled machines: whether they are online, and what you may do on each now.",
            discussion: """
                Machines come by name, 100 at a time; --all lists every match. OU and group conditions use each \
                machine's directory facts as last looked up (ora machines --scopes lists the OUs and groups).
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "Text the machine's name contains.") var search: String?
        @Option(help: "Only machines below this OU or container (a DN).") var ou: String?
        @Option(help: "Only machines in this computer group (a DN), nested groups included.") var group: String?
        @Flag(help: "Only machines whose agent is connected now.") var online = false
        @Option(help: "Only machines where you may ask for at least this: view or control.") var access: String?
        @Option(help: "Only machines whose names come after this one (where the last page ended).") var after: String?
        @Option(help: "How many machines at most (1 to 500).") var limit: Int = 100
        @Flag(help: "Every match, a page after another.") var all = false
        @Flag(help: "List the OUs, containers and computer groups machines lie in, with how many.") var scopes = false
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let client = try authenticatedClient(options)
            if scopes {
                let scopes = try await client.call { try await $0.listMachineScopes().ok.body.json }
                if json { return try printJSON(scopes) }
                print("OUs and containers:")
                for scope in scopes.containers { print("  \(scope.machines)\t\(AuditText.escaped(scope.dn))") }
                print("Computer groups:")
                for scope in scopes.groups { print("  \(scope.machines)\t\(AuditText.escaped(scope.dn))") }
                return
            }
            let accessLeast = try access.map { text in
                guard let mode = Operations.ListMachines.Input.Query.AccessPayload(rawValue: text) else {
                    throw ValidationError("--access must be view or control, not \"\(text)\"")
                }
                return mode
            }
            var cursor = after
            var pages: [Components.Schemas.HelperMachinePage] = []
            repeat {
                let query = Operations.ListMachines.Input.Query(
                    q: search, ou: ou, group: group, online: online ? true : nil, access: accessLeast, after: cursor,
                    limit: Int64(limit))
                let page = try await client.call { try await $0.listMachines(query: query).ok.body.json }
                if !json { printMachines(page) }
                pages.append(page)
                cursor = page.next
            } while all && cursor != nil
            if json { return try printJSON(pages.count == 1 ? pages[0].machines : pages.flatMap(\.machines)) }
            let shown = pages.reduce(0) { $0 + $1.machines.count }
            if let next = pages.last?.next {
                print("\(shown) shown of \(pages[0].matched) that match; more with --after \(next) or --all")
            } else if shown == 0 {
                print(pages[0].matched == 0 ? "no machine matches" : "none of the \(pages[0].matched) that match")
            }
        }

        private func printMachines(_ page: Components.Schemas.HelperMachinePage) {
            for machine in page.machines {
                let access = machine.access.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
                let state = machine.revoked ? "revoked" : machine.online ? "online " : "offline"
                print("\(AuditText.escaped(machine.name))  \(state)  \(access)  \(machine.explanation)")
            }
        }
    }

    struct OfferCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "offer",
            abstract: "Offer remote assistance to a machine; the person there is always asked first.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The machine's name.") var machine: String
        @Flag(help: "Ask to be allowed to request control later (the person is asked again then).")
        var control = false
        @Option(help: "The ticket the offer is about.") var ticket: String?
        @Option(help: "Why you offer help, shown to the person at the machine.") var reason: String?
        @Flag(help: "Wait for the person's answer and print it.") var wait = false

        func run() async throws {
            let client = try authenticatedClient(options)
            let offer = Components.Schemas.OfferRequest(
                machine: machine, mode: control ? .control : .view, ticket: ticket, reason: reason)
            let session = try await client.call { try await $0.offerHelp(body: .json(offer)).created.body.json }
            print(
                "offered \(session.mode) to \(session.machine), allowed by \(session.policies.joined(separator: ", ")) "
                    + "(policy version \(session.policyVersion)); session \(session.id.lowercased())")
            print("watch it in the console: \(client.consolePage(ofSession: session.id))")
            guard wait else { return }
            let last = try await SessionEvents.follow(
                session.id, client: client, until: { $0.state != .offered && $0.state != .awaitingConsent })
            print(last.sentence)
            if last.state == .ended { throw ExitCode(2) }
        }
    }

    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List your sessions (administrators and auditors: everyone's), newest first.")
        @OptionGroup var options: ServerOption

        func run() async throws {
            let sessions = try await authenticatedClient(options).call { try await $0.listSessions().ok.body.json }
            if sessions.isEmpty { return print("no sessions") }
            for session in sessions {
                print(
                    "\(session.id.lowercased())  \(session.machine)  \(session.helper)  \(session.state.rawValue)"
                        + (session.endReason.map { " (\($0.rawValue))" } ?? ""))
            }
        }
    }

    struct SessionCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "session", abstract: "Look at, take control in, or end one session.",
            subcommands: [Show.self, Control.self, End.self])
    }
}

extension ORACommand.SessionCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a session's state.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id.") var id: String

        func validate() throws { _ = try sessionID(id) }

        func run() async throws {
            let id = try sessionID(id)
            let client = try authenticatedClient(options)
            let session = try await client.call { try await $0.getSession(path: .init(id: id)).ok.body.json }
            print("session:   \(session.id.lowercased())")
            print("page:      \(client.consolePage(ofSession: session.id))")
            print("machine:   \(session.machine)")
            print("helper:    \(session.helper)")
            print("mode:      \(session.mode.rawValue)")
            print("state:     \(session.sentence)")
            print("ticket:    \(session.ticket.map(AuditText.escaped) ?? "none")")
            print("policies:  \(session.policies.joined(separator: ", ")) (version \(session.policyVersion))")
            print("offered:   \(session.offeredAt.formatted(.iso8601))")
            if let started = session.startedAt { print("accepted:  \(started.formatted(.iso8601))") }
        }
    }

    struct Control: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the person at the machine for control of keyboard and mouse.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id.") var id: String

        func validate() throws { _ = try sessionID(id) }
        @Flag(help: "Wait for the answer and print it.") var wait = false

        func run() async throws {
            let client = try authenticatedClient(options)
            let session = try sessionID(id)
            _ = try await client.call { try await $0.requestControl(path: .init(id: session)).ok }
            print("control requested; the person at the machine is asked")
            guard wait else { return }
            let last = try await SessionEvents.follow(session, client: client, until: { $0.state != .controlRequested })
            print(last.sentence)
            if last.state != .controlling { throw ExitCode(2) }
        }
    }

    struct End: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a session.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id.") var id: String

        func validate() throws { _ = try sessionID(id) }

        func run() async throws {
            let id = try sessionID(id)
            let session = try await authenticatedClient(options).call {
                try await $0.endSession(path: .init(id: id)).ok.body.json
            }
            print(session.sentence)
        }
    }
}

/// A session id from the command line, in lower case.
func sessionID(_ text: String) throws -> String {
    guard let id = UUID(uuidString: text) else { throw ValidationError("'\(text)' is not a session id") }
    return id.uuidString.lowercased()
}

/// Following a session's state changes (server-sent events).
enum SessionEvents {
    /// Reads the session's states as they change until `done` holds for one, or the session ends.
    /// - Returns: that state.
    static func follow(
        _ id: String, client: APIClient, until done: (SessionAnswer) -> Bool
    ) async throws -> SessionAnswer {
        let following = APIClient(server: client.server, token: client.token, timeout: .seconds(12 * 3600))
        let events = try await following.call {
            try await $0.followSession(path: .init(id: id)).ok.body.textEventStream
        }
        var last: SessionAnswer?
        do {
            for try await event in events.asDecodedServerSentEventsWithJSONData(
                of: SessionAnswer.self, decoder: .oraAPI())
            {
                guard let state = event.data else { continue }
                last = state
                if done(state) || state.state == .ended { return state }
            }
        } catch {
            throw following.failure(error)
        }
        guard let last else { throw fail("the server closed the event stream without an answer", code: 3) }
        return last
    }
}
