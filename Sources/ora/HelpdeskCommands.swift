import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ORACore

/// A session as the server answers it.
struct SessionAnswer: Decodable {
    var id: UUID
    var machine: String
    var helper: String
    var mode: String
    var state: String
    var endReason: String?
    var ticket: String?
    var reason: String?
    var policies: [String]
    var policyVersion: Int64
    var offeredAt: Date
    var startedAt: Date?
    var deadline: Date?
    var controlRequests: Int

    enum CodingKeys: String, CodingKey {
        case id, machine, helper, mode, state, ticket, reason, policies, deadline
        case endReason = "end_reason"
        case policyVersion = "policy_version"
        case offeredAt = "offered_at"
        case startedAt = "started_at"
        case controlRequests = "control_requests"
    }

    /// What the state means, for the helper.
    var sentence: String {
        switch state {
        case "offered": "offered; on its way to \(machine)"
        case "awaiting_consent": "waiting for the person at \(machine) to answer"
        case "viewing": "accepted: you see the screen of \(machine) (view only)"
        case "control_requested": "waiting for the person at \(machine) to grant control"
        case "controlling": "control granted: you may use keyboard and mouse on \(machine)"
        case "ended":
            "ended: "
                + (SessionEndReason(rawValue: endReason ?? "").map(\.explanation) ?? (endReason ?? "unknown reason"))
        default: state
        }
    }
}

extension ORACommand {
    struct Machines: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List enrolled machines, whether they are online, and what you may do on each now.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        struct Answer: Decodable {
            var name: String
            var online: Bool
            var access: String
            var explanation: String
        }

        func run() async throws {
            let answer = try await authenticatedClient(options).send("GET", "/api/v1/machines")
            guard answer.status == 200 else { throw answer.failure() }
            if json { return print(answer.body) }
            let machines = try answer.decode([Answer].self)
            if machines.isEmpty { return print("no machines are enrolled") }
            for machine in machines {
                print(
                    "\(AuditText.escaped(machine.name))  \(machine.online ? "online " : "offline")  "
                        + "\(machine.access.padding(toLength: 7, withPad: " ", startingAt: 0))  \(machine.explanation)")
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

        struct Body: Encodable {
            var machine: String
            var mode: String
            var ticket: String?
            var reason: String?
        }

        func run() async throws {
            let client = try authenticatedClient(options)
            let answer = try await client.send(
                "POST", "/api/v1/offers",
                encoding: Body(machine: machine, mode: control ? "control" : "view", ticket: ticket, reason: reason))
            guard answer.status == 201 else { throw answer.failure() }
            let session = try answer.decode(SessionAnswer.self)
            print(
                "offered \(session.mode) to \(session.machine), allowed by \(session.policies.joined(separator: ", ")) "
                    + "(policy version \(session.policyVersion)); session \(session.id.uuidString.lowercased())")
            guard wait else { return }
            let last = try await SessionEvents.follow(
                session.id, client: client, until: { $0.state != "offered" && $0.state != "awaiting_consent" })
            print(last.sentence)
            if last.state == "ended" { throw ExitCode(2) }
        }
    }

    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List your sessions (administrators and auditors: everyone's), newest first.")
        @OptionGroup var options: ServerOption

        func run() async throws {
            let answer = try await authenticatedClient(options).send("GET", "/api/v1/sessions")
            guard answer.status == 200 else { throw answer.failure() }
            let sessions = try answer.decode([SessionAnswer].self)
            if sessions.isEmpty { return print("no sessions") }
            for session in sessions {
                print(
                    "\(session.id.uuidString.lowercased())  \(session.machine)  \(session.helper)  \(session.state)"
                        + (session.endReason.map { " (\($0))" } ?? ""))
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
            let answer = try await authenticatedClient(options).send("GET", "/api/v1/sessions/\(try sessionID(id))")
            guard answer.status == 200 else { throw answer.failure() }
            let session = try answer.decode(SessionAnswer.self)
            print("session:   \(session.id.uuidString.lowercased())")
            print("machine:   \(session.machine)")
            print("helper:    \(session.helper)")
            print("mode:      \(session.mode)")
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
            let answer = try await client.send("POST", "/api/v1/sessions/\(session)/control", body: nil)
            guard answer.status == 200 else { throw answer.failure() }
            print("control requested; the person at the machine is asked")
            guard wait else { return }
            let last = try await SessionEvents.follow(
                session, client: client, until: { $0.state != "control_requested" })
            print(last.sentence)
            if last.state != "controlling" { throw ExitCode(2) }
        }
    }

    struct End: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a session.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id.") var id: String

        func validate() throws { _ = try sessionID(id) }

        func run() async throws {
            let answer = try await authenticatedClient(options).send(
                "DELETE", "/api/v1/sessions/\(try sessionID(id))", body: nil)
            guard answer.status == 200 else { throw answer.failure() }
            print(try answer.decode(SessionAnswer.self).sentence)
        }
    }
}

/// A session id from the command line.
func sessionID(_ text: String) throws -> UUID {
    guard let id = UUID(uuidString: text) else { throw ValidationError("'\(text)' is not a session id") }
    return id
}

/// Following a session's state changes (server-sent events).
enum SessionEvents {
    /// Reads the session's states as they change until `done` holds for one, or the session ends.
    /// - Returns: that state.
    static func follow(
        _ id: UUID, client: APIClient, until done: (SessionAnswer) -> Bool
    ) async throws -> SessionAnswer {
        var request = HTTPClientRequest(url: client.server + "/api/v1/sessions/\(id.uuidString.lowercased())/events")
        if let token = client.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .hours(12))
        } catch {
            throw fail("cannot reach \(client.server): \(error)", code: 3)
        }
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw APIClient.Answer(status: response.status.code, body: String(buffer: body)).failure()
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var pending = ""
        var last: SessionAnswer?
        for try await chunk in response.body {
            pending += String(buffer: chunk)
            while let end = pending.range(of: "\n\n") {
                let event = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                guard let line = event.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }),
                    let state = try? decoder.decode(SessionAnswer.self, from: Data(line.dropFirst(6).utf8))
                else { continue }
                last = state
                if done(state) || state.state == "ended" { return state }
            }
        }
        guard let last else { throw fail("the server closed the event stream without an answer", code: 3) }
        return last
    }
}
