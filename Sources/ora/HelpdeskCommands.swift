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
            if json {
                // The server's page; with --all, every page's machines in one.
                var combined = pages[0]
                combined.machines = pages.flatMap(\.machines)
                combined.next = pages.last?.next
                return try printJSON(combined)
            }
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
        @Flag(help: "Print the session as JSON, one object per line (with --wait, again once answered).")
        var json = false

        func run() async throws {
            let client = try authenticatedClient(options)
            let offer = Components.Schemas.OfferRequest(
                machine: machine, mode: control ? .control : .view, ticket: ticket, reason: reason)
            let session = try await client.call { try await $0.offerHelp(body: .json(offer)).created.body.json }
            if json {
                try printJSON(session)
            } else {
                print(
                    "offered \(session.mode) to \(session.machine), allowed by "
                        + "\(session.policies.joined(separator: ", ")) (policy version \(session.policyVersion)); "
                        + "session \(session.id.lowercased())")
                print("watch it in the console: \(client.consolePage(ofSession: session.id))")
            }
            // At once, also into a pipe: whoever reads it learns the session before the person answers.
            fflush(nil)
            guard wait else { return }
            let last = try await SessionEvents.follow(
                session.id, client: client, until: { $0.state != .offered && $0.state != .awaitingConsent })
            if json {
                let answered = try await client.call {
                    try await $0.getSession(path: .init(id: session.id)).ok.body.json
                }
                try printJSON(answered)
            } else {
                print(last.sentence)
            }
            if last.state == .ended { throw ExitCode(2) }
        }
    }

    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List your sessions (administrators and auditors: everyone's), newest first.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let sessions = try await authenticatedClient(options).call { try await $0.listSessions().ok.body.json }
            if json { return try printJSON(sessions) }
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
            subcommands: [Show.self, Control.self, Chat.self, End.self])
    }
}

extension ORACommand.SessionCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a session's state.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id, or its first 4 or more characters.") var id: String
        @Flag(help: "Print the server's JSON answer.") var json = false

        func validate() throws { _ = try sessionID(id) }

        func run() async throws {
            let client = try authenticatedClient(options)
            let id = try await resolveSession(id, client: client)
            let session = try await client.call { try await $0.getSession(path: .init(id: id)).ok.body.json }
            if json { return try printJSON(session) }
            print("session:   \(session.id.lowercased())")
            print("page:      \(client.consolePage(ofSession: session.id))")
            print("machine:   \(session.machine)")
            print("helper:    \(session.helper)")
            print("mode:      \(session.mode.rawValue)")
            print("state:     \(session.sentence)")
            print("ticket:    \(session.ticket.map(AuditText.escaped) ?? "none")")
            print("policies:  \(session.policies.joined(separator: ", ")) (version \(session.policyVersion))")
            print("offered:   \(TimeText.local(session.offeredAt))")
            if let started = session.startedAt { print("accepted:  \(TimeText.local(started))") }
        }
    }

    struct Control: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the person at the machine for control of keyboard and mouse.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id, or its first 4 or more characters.") var id: String

        func validate() throws { _ = try sessionID(id) }
        @Flag(help: "Wait for the answer and print it.") var wait = false

        func run() async throws {
            let client = try authenticatedClient(options)
            let session = try await resolveSession(id, client: client)
            _ = try await client.call { try await $0.requestControl(path: .init(id: session)).ok }
            print("control requested; the person at the machine is asked")
            guard wait else { return }
            let last = try await SessionEvents.follow(session, client: client, until: { $0.state != .controlRequested })
            print(last.sentence)
            if last.state != .controlling { throw ExitCode(2) }
        }
    }

    struct Chat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Chat with the person at the machine.",
            discussion: """
                With a message, sends it and exits. Without one, prints the chat so far, then each line as it \
                comes and what the person does (their session window, typing, taking control back), and sends \
                each line you type; it ends with the session, or at the end of input (Ctrl+D).
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id, or its first 4 or more characters.") var id: String
        @Argument(help: "A message to send (one line); without one, chat interactively.") var message: [String] = []

        func validate() throws { _ = try sessionID(id) }

        func run() async throws {
            let client = try authenticatedClient(options)
            let id = try await resolveSession(id, client: client)
            if !message.isEmpty {
                let sent = try await send(message.joined(separator: " "), to: id, client: client)
                print(ChatPrinter.line(sent))
                return
            }
            let printer = ChatPrinter(seen: 0)
            let input = Self.standardInputLines()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var following = false
                    let last = try await SessionEvents.read(id, client: client) { event in
                        // Following now: the chat so far, then what the stream brings. Read in this order, no line
                        // falls between the two; one in both is printed once (by its number).
                        if !following {
                            following = true
                            let transcript = try await client.call {
                                try await $0.getChatTranscript(path: .init(id: id)).ok.body.json
                            }
                            for line in transcript.messages { printer.show(.chat(line)) }
                        }
                        printer.show(event)
                        return false
                    }
                    ChatPrinter.say(last.sentence)
                }
                group.addTask {
                    for await line in input where !line.allSatisfy(\.isWhitespace) {
                        do {
                            _ = try await send(line, to: id, client: client)
                        } catch let error as ExitCode where error.rawValue != 3 {
                            // Refused (the message said why): the chat goes on.
                            continue
                        }
                    }
                }
                // Either the session ended or the input did: both end the chat.
                _ = try await group.next()
                group.cancelAll()
            }
        }

        private func send(
            _ text: String, to id: String, client: APIClient
        ) async throws -> Components.Schemas.ChatMessage {
            try await client.call {
                try await $0.sendChatMessage(path: .init(id: id), body: .json(.init(text: text))).created.body.json
            }
        }

        /// The lines of standard input, read on a thread of their own.
        private static func standardInputLines() -> AsyncStream<String> {
            let (stream, continuation) = AsyncStream<String>.makeStream()
            Thread.detachNewThread {
                while let line = readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }
            return stream
        }
    }

    struct End: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a session.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session's id, or its first 4 or more characters.") var id: String

        func validate() throws { _ = try sessionID(id) }

        func run() async throws {
            let client = try authenticatedClient(options)
            let id = try await resolveSession(id, client: client)
            let session = try await client.call { try await $0.endSession(path: .init(id: id)).ok.body.json }
            print(session.sentence)
        }
    }
}

/// A session id from the command line, in lower case.
/// Checks that `text` can name a session: a whole id, or the first 4 or more characters of one, as `ora sessions`
/// prints them (as git abbreviates commits).
func sessionID(_ text: String) throws -> String {
    if let id = UUID(uuidString: text) { return id.uuidString.lowercased() }
    let prefix = text.lowercased()
    guard prefix.count >= 4, prefix.count < 36, prefix.allSatisfy({ $0.isHexDigit || $0 == "-" }) else {
        throw ValidationError(
            "'\(text)' is not a session id (a whole id, or its first 4 or more characters, as ora sessions prints them)"
        )
    }
    return prefix
}

/// The whole id of the session `text` names: itself when it is one, else the one session (of those `ora sessions`
/// lists for you) whose id starts with it.
/// - Throws: exit 1 when no session starts with it, 64 when several do (each named).
func resolveSession(_ text: String, client: APIClient) async throws -> String {
    let prefix = try sessionID(text)
    if UUID(uuidString: prefix) != nil { return prefix }
    let sessions = try await client.call { try await $0.listSessions().ok.body.json }
    let matches = sessions.map { $0.id.lowercased() }.filter { $0.hasPrefix(prefix) }
    switch matches.count {
    case 1: return matches[0]
    case 0: throw fail("no session of yours starts with \(prefix)", code: 1)
    default:
        throw fail(
            "\(prefix) is ambiguous: it starts \(matches.count) sessions (\(matches.prefix(3).joined(separator: ", "))"
                + (matches.count > 3 ? ", …" : "") + "); give more of the id", code: 64)
    }
}

/// Following a session: its state at every change and its chat lines (server-sent events).
enum SessionEvents {
    /// One event of the stream.
    enum Event {
        case state(SessionAnswer)
        case chat(Components.Schemas.ChatMessage)
    }

    /// Reads the session's events as they come, giving each to `handle`, until it returns true or the session
    /// ends.
    /// - Returns: the last state read.
    static func read(
        _ id: String, client: APIClient, _ handle: (Event) async throws -> Bool
    ) async throws -> SessionAnswer {
        let following = client.waiting(.seconds(12 * 3600))
        let events = try await following.call {
            try await $0.followSession(path: .init(id: id)).ok.body.textEventStream
        }
        let decoder = JSONDecoder.oraAPI()
        var last: SessionAnswer?
        do {
            for try await event in events.asDecodedServerSentEvents() {
                guard let data = event.data else { continue }
                switch event.event {
                case "state":
                    let state = try decoder.decode(SessionAnswer.self, from: Data(data.utf8))
                    last = state
                    if try await handle(.state(state)) || state.state == .ended { return state }
                case "chat":
                    let message = try decoder.decode(Components.Schemas.ChatMessage.self, from: Data(data.utf8))
                    if try await handle(.chat(message)), let last { return last }
                default:
                    // A kind of event this version does not know: skipped, as the stream's format allows.
                    continue
                }
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            throw following.failure(error)
        }
        guard let last else { throw fail("the server closed the event stream without an answer", code: 3) }
        return last
    }

    /// Reads the session's states as they change until `done` holds for one, or the session ends.
    /// - Returns: that state.
    static func follow(
        _ id: String, client: APIClient, until done: @escaping (SessionAnswer) -> Bool
    ) async throws -> SessionAnswer {
        try await read(id, client: client) { event in
            guard case .state(let state) = event else { return false }
            return done(state)
        }
    }
}

/// Prints a session's chat and what the person at the machine does, one line each, every outside text escaped.
final class ChatPrinter: @unchecked Sendable {
    /// The highest line number printed: the stream may repeat the last lines of the transcript.
    private var seen: Int
    private var lastState: SessionAnswer?

    init(seen: Int) {
        self.seen = seen
    }

    /// Writes one line at once, also into a pipe or a file (where `print` would keep it in its buffer).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// "14:31 Lena Wolf: Please open Outlook", in local time.
    static func line(_ message: Components.Schemas.ChatMessage) -> String {
        let time = message.at.formatted(date: .omitted, time: .shortened)
        let text = message.text.map(AuditText.escaped) ?? "[\(message.digest ?? "text not kept")]"
        return "\(time) \(AuditText.escaped(message.name)): \(text)"
    }

    func show(_ event: SessionEvents.Event) {
        switch event {
        case .chat(let message):
            guard message.sequence > seen else { return }
            seen = message.sequence
            Self.say(Self.line(message))
        case .state(let state):
            defer { lastState = state }
            let before = lastState
            if before?.state != state.state { Self.say("-- \(state.sentence)") }
            if let how = state.controlStoppedBy, state.controlStoppedAt != before?.controlStoppedAt {
                let means =
                    switch how {
                    case .esc: "pressed Esc"
                    case .ctrlC: "pressed Ctrl+C"
                    case .button: "pressed Stop control"
                    case .helper: nil as String?
                    }
                if let means { Self.say("-- the person at \(state.machine) \(means): view only") }
            }
            if let person = state.person, person != before?.person {
                if person.window != before?.person?.window {
                    Self.say(
                        person.window
                            ? "-- the session window is open on \(state.machine)"
                            : "-- the session window is not on the screen of \(state.machine)")
                }
                if person.typing, before?.person?.typing != true {
                    Self.say("-- the person at \(state.machine) is typing…")
                }
            }
        }
    }
}
