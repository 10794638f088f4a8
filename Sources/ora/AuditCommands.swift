import ArgumentParser
import Foundation
import ORAClient
import ORACore
import OpenAPIRuntime

extension ORACommand {
    struct AuditCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract: "Search, export and verify the audit log (auditors and administrators).",
            subcommands: [Search.self, Session.self, Export.self, Verify.self, Checkpoint.self]
        )
    }
}

/// The filters every audit command that selects events accepts.
struct AuditFilterOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Events at or after this time: 2026-11-22, 2026-11-22T09:00:00Z, or before now: 30m, 1h, 7d, today, "
                + "yesterday."))
    var since: String?
    @Option(help: "Events before this time, written as for --since.") var until: String?
    @Option(help: "An event name (offer.requested) or a prefix (offer.*).") var event: String?
    @Option(help: "An event code (ORA2001).") var code: String?
    @Option(name: .customLong("operator"), help: "An operator, by account name or DN.") var person: String?
    @Option(help: "A machine, by name.") var machine: String?
    @Option(help: "A remote assistance session id.") var session: String?
    @Option(help: "success, denied or failure.") var outcome: String?
    @Option(name: .customLong("text"), help: "Text anywhere in the details.") var text: String?

    var query: Operations.SearchAudit.Input.Query {
        .init(
            since: since.map { Self.absolute($0) }, until: until.map { Self.absolute($0) }, event: event, code: code,
            _operator: person, machine: machine, session: session, outcome: try? outcomeFilter, q: text)
    }

    /// A time as `--since` and `--until` take it, as the server reads times: a duration before now (`30m`, `1h`,
    /// `7d`), `now`, `today` or `yesterday` (their start, in local time) become an instant in UTC; anything else is
    /// passed on as it is, for the server to read or refuse.
    static func absolute(_ text: String, now: Date = Date()) -> String {
        let format = Date.ISO8601FormatStyle(timeZone: .gmt)
        let today = Calendar.current.startOfDay(for: now)
        switch text.lowercased() {
        case "now": return now.formatted(format)
        case "today": return today.formatted(format)
        case "yesterday":
            return (Calendar.current.date(byAdding: .day, value: -1, to: today) ?? today).formatted(format)
        default:
            guard let duration = Duration(text: text) else { return text }
            let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
            return now.addingTimeInterval(-seconds).formatted(format)
        }
    }

    /// `--outcome`, checked.
    var outcomeFilter: Components.Schemas.AuditOutcome? {
        get throws {
            guard let outcome else { return nil }
            guard let value = Components.Schemas.AuditOutcome(rawValue: outcome) else {
                throw ValidationError("--outcome is success, denied or failure, not '\(outcome)'")
            }
            return value
        }
    }

    func validate() throws { _ = try outcomeFilter }
}

extension ORACommand.AuditCommand {
    /// One line per event; every value from outside is escaped, so a crafted name cannot forge a line.
    static func line(_ event: Components.Schemas.AuditEvent) throws -> String {
        var parts = [
            event.time, "#\(event.sequence)", event.event, event.outcome.rawValue,
            AuditText.escaped(event.actor.name ?? event.actor.id),
        ]
        if let machine = event.machine { parts.append("machine=" + AuditText.escaped(machine)) }
        if let session = event.session { parts.append("session=" + session.lowercased()) }
        if let source = event.source { parts.append("from=" + AuditText.escaped(source)) }
        if let policy = event.policy {
            let names = policy.names.map(AuditText.escaped).joined(separator: ",")
            parts.append("policy=v\(policy.version.map(String.init) ?? "-")" + (names.isEmpty ? "" : "(\(names))"))
        }
        if !event.details.additionalProperties.value.isEmpty {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            // JSON escapes line breaks and quotes itself: escaped once, it stays JSON a program can read.
            parts.append(AuditText.escapedJSON(String(decoding: try encoder.encode(event.details), as: UTF8.self)))
        }
        return parts.joined(separator: "  ")
    }

    /// One event as a block for a terminal: its time, number, name, outcome and actor on the first line, the rest
    /// below, indented and wrapped at `width`.
    static func block(_ event: Components.Schemas.AuditEvent, width: Int) throws -> String {
        var fields = try line(event).components(separatedBy: "  ")
        // People read local time; the line keeps the time as recorded, in UTC.
        fields[0] = TimeText.local(event.time)
        let head = fields.prefix(5).joined(separator: "  ")
        var lines = [head]
        for field in fields.dropFirst(5) {
            var rest = Substring(field)
            while !rest.isEmpty {
                let room = max(20, width - 4)
                lines.append("    " + rest.prefix(room))
                rest = rest.dropFirst(room)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The events, one JSON object or one line each — or, on a terminal, one readable block each.
    static func printEvents(_ events: [Components.Schemas.AuditEvent], json: Bool) throws {
        let width = Terminal.columns
        for event in events {
            if json {
                try printJSON(event)
            } else if let width {
                print(try block(event, width: width))
            } else {
                print(try line(event))
            }
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Find audit events, newest first.")
        @OptionGroup var options: ServerOption
        @OptionGroup var filter: AuditFilterOptions
        @Option(help: "How many events (1–1000).") var limit: Int = 50
        @Option(help: "Continue before this sequence number (the 'more:' hint of the previous page).") var before:
            Int64?
        @Flag(help: "One JSON object per event.") var json = false

        func run() async throws {
            var query = filter.query
            query.limit = Int64(limit)
            query.before = before
            let page = try await authenticatedClient(options).call {
                try await $0.searchAudit(query: query).ok.body.json
            }
            if page.events.isEmpty && !json { print("no events match") }
            try ORACommand.AuditCommand.printEvents(page.events, json: json)
            if let next = page.next {
                FileHandle.standardError.write(Data("more: ora audit search … --before \(next)\n".utf8))
            }
        }
    }

    struct Session: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the timeline of one remote assistance session.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The session id.") var id: String
        @Flag(help: "One JSON object per event.") var json = false

        func run() async throws {
            guard let session = UUID(uuidString: id)?.uuidString.lowercased() else {
                throw fail("\"\(id)\" is not a session id (a UUID)", code: 64)
            }
            let page = try await authenticatedClient(options).call {
                try await $0.getSessionAuditTimeline(path: .init(id: session)).ok.body.json
            }
            if page.events.isEmpty && !json { print("no events for session \(session)") }
            try ORACommand.AuditCommand.printEvents(page.events, json: json)
            guard !json else { return }
            let chat = page.events.filter { $0.event == "chat.message" }
            guard !chat.isEmpty else { return }
            print("\nchat transcript (\(chat.count) lines):")
            for event in chat { print(Self.transcriptLine(event)) }
        }

        /// A `chat.message` event as a line of the transcript: "2026-12-06T14:31:02Z Lena Wolf: text", or the digest
        /// where only that is kept.
        static func transcriptLine(_ event: Components.Schemas.AuditEvent) -> String {
            let details = event.details.additionalProperties.value
            let name = details["name"] as? String ?? event.actor.name ?? event.actor.id
            let text =
                (details["text"] as? String).map(AuditText.escaped)
                ?? "[text not kept: \(details["digest"] as? String ?? "no digest")]"
            // As the events above it: local time in a terminal, the time as recorded into a pipe or a file.
            let time = Terminal.columns == nil ? event.time : TimeText.local(event.time)
            return "\(time) \(AuditText.escaped(name)): \(text)"
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write matching events to standard output, oldest first, as JSON lines or CSV; any size.")
        @OptionGroup var options: ServerOption
        @OptionGroup var filter: AuditFilterOptions
        @Option(help: "jsonl (re-verifiable, see Docs/AuditEvents.md) or csv.") var format: String = "jsonl"

        func run() async throws {
            guard let format = Operations.ExportAudit.Input.Query.FormatPayload(rawValue: format) else {
                throw fail("--format must be jsonl or csv, not \"\(format)\"", code: 64)
            }
            let filter = filter.query
            let query = Operations.ExportAudit.Input.Query(
                format: format, since: filter.since, until: filter.until, event: filter.event, code: filter.code,
                _operator: filter._operator, machine: filter.machine, session: filter.session,
                outcome: filter.outcome, q: filter.q)
            // Any size: read as it arrives, for as long as it takes.
            let client = try authenticatedClient(options, timeout: .seconds(24 * 3600))
            let body = try await client.call { try await $0.exportAudit(query: query).ok.body }
            let bytes: HTTPBody
            switch body {
            case .applicationXNdjson(let lines): bytes = lines
            case .csv(let table): bytes = table
            }
            do {
                for try await chunk in bytes { FileHandle.standardOutput.write(Data(chunk)) }
            } catch {
                throw fail("the download from \(client.server) broke off: \(error)", code: 3)
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-verify the audit log's hash chain and checkpoints; exit 1 when it was tampered with.")
        @OptionGroup var options: ServerOption
        @Option(help: "The first sequence to check.") var from: Int64?
        @Option(help: "The last sequence to check.") var through: Int64?
        @Flag(help: "Print the server's JSON report.") var json = false

        func run() async throws {
            let client = try authenticatedClient(options, timeout: .seconds(2 * 3600))
            let report = try await client.call {
                try await $0.verifyAudit(query: .init(from: from, through: through)).ok.body.json
            }
            if json { try printJSON(report) }
            let range = report.first.map { "\($0)–\(report.last ?? $0)" } ?? "none"
            if let problem = report.problem {
                let id = problem.eventId.map { " (\($0.lowercased()))" } ?? ""
                throw fail(
                    "the audit log is NOT intact: event \(problem.sequence)\(id): \(problem.detail) "
                        + "[\(problem.kind.rawValue)]; "
                        + "\(report.verified) events before it verified", code: 1)
            }
            if !json {
                print(
                    "intact: \(report.verified) events verified (\(range)), chain head \(report.head), "
                        + "\(report.checkpoints) signed checkpoint\(report.checkpoints == 1 ? "" : "s") matched")
            }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the chain head now and print the checkpoint (JSON) for anchoring outside the database.")
        @OptionGroup var options: ServerOption
        @Flag(help: "List the stored checkpoints instead, oldest first.") var list = false

        func run() async throws {
            let client = try authenticatedClient(options)
            if list {
                let checkpoints = try await client.call { try await $0.listAuditCheckpoints().ok.body.json }
                for checkpoint in checkpoints { try printJSON(checkpoint) }
            } else {
                try printJSON(try await client.call { try await $0.createAuditCheckpoint().created.body.json })
            }
        }
    }
}
