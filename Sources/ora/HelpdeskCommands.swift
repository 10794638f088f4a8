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
            abstract: "List enrolled machines, whether they are online, and what you may do on each now.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let machines = try await authenticatedClient(options).call { try await $0.listMachines().ok.body.json }
            if json { return try printJSON(machines) }
            if machines.isEmpty { return print("no machines are enrolled") }
            for machine in machines {
                let access = machine.access.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
                print(
                    "\(AuditText.escaped(machine.name))  \(machine.online ? "online " : "offline")  "
                        + "\(access)  \(machine.explanation)")
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
