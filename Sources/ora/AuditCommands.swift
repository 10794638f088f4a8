import ArgumentParser
import Foundation
import NIOCore
import ORACore

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
    @Option(help: "Events at or after this time: 2026-11-22 or 2026-11-22T09:00:00Z.") var since: String?
    @Option(help: "Events before this time.") var until: String?
    @Option(help: "An event name (offer.requested) or a prefix (offer.*).") var event: String?
    @Option(help: "An event code (ORA2001).") var code: String?
    @Option(name: .customLong("operator"), help: "An operator, by account name or DN.") var person: String?
    @Option(help: "A machine, by name.") var machine: String?
    @Option(help: "A remote assistance session id.") var session: String?
    @Option(help: "success, denied or failure.") var outcome: String?
    @Option(name: .customLong("text"), help: "Text anywhere in the details.") var text: String?

    var query: [URLQueryItem] {
        [
            ("since", since), ("until", until), ("event", event), ("code", code), ("operator", person),
            ("machine", machine), ("session", session), ("outcome", outcome), ("q", text),
        ].compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
    }
}

extension ORACommand.AuditCommand {
    /// `path` with `items` as its query string.
    static func path(_ path: String, _ items: [URLQueryItem]) -> String {
        var components = URLComponents()
        components.path = path
        components.queryItems = items.isEmpty ? nil : items
        // `+` is a space in query strings; keep it literal in times such as 2026-11-22T09:00:00+01:00.
        return components.string!.replacingOccurrences(of: "+", with: "%2B")
    }

    struct Page: Decodable {
        var events: [AuditEventDocument]
        var next: String?
    }

    /// One line per event; every value from outside is escaped, so a crafted name cannot forge a line.
    static func line(_ event: AuditEventDocument) -> String {
        var parts = [
            event.time, "#\(event.sequence)", event.event, event.outcome.rawValue,
            AuditText.escaped(event.actor.name ?? event.actor.id),
        ]
        if let machine = event.machine { parts.append("machine=" + AuditText.escaped(machine)) }
        if let session = event.session { parts.append("session=" + session.uuidString.lowercased()) }
        if let source = event.source { parts.append("from=" + AuditText.escaped(source)) }
        if let policy = event.policy {
            let names = policy.names.map(AuditText.escaped).joined(separator: ",")
            parts.append("policy=v\(policy.version.map(String.init) ?? "-")" + (names.isEmpty ? "" : "(\(names))"))
        }
        if !event.details.isEmpty {
            parts.append(
                AuditText.escaped(
                    String(decoding: AuditCanonicalEncoding.encode(.object(event.details)), as: UTF8.self)))
        }
        return parts.joined(separator: "  ")
    }

    static func printEvents(_ events: [AuditEventDocument], json: Bool) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for event in events {
            if json {
                print(String(decoding: try encoder.encode(event), as: UTF8.self))
            } else {
                print(line(event))
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
            let client = try authenticatedClient(options)
            var items = filter.query
            items.append(URLQueryItem(name: "limit", value: String(limit)))
            if let before { items.append(URLQueryItem(name: "before", value: String(before))) }
            let answer = try await client.send("GET", ORACommand.AuditCommand.path("/api/v1/audit", items))
            guard answer.status == 200 else { throw answer.failure() }
            let page = try answer.decode(Page.self)
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
            guard let session = UUID(uuidString: id) else {
                throw fail("\"\(id)\" is not a session id (a UUID)", code: 64)
            }
            let client = try authenticatedClient(options)
            let answer = try await client.send(
                "GET", "/api/v1/audit/sessions/\(session.uuidString.lowercased())")
            guard answer.status == 200 else { throw answer.failure() }
            let page = try answer.decode(Page.self)
            if page.events.isEmpty && !json { print("no events for session \(session.uuidString.lowercased())") }
            try ORACommand.AuditCommand.printEvents(page.events, json: json)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write matching events to standard output, oldest first, as JSON lines or CSV; any size.")
        @OptionGroup var options: ServerOption
        @OptionGroup var filter: AuditFilterOptions
        @Option(help: "jsonl (re-verifiable, see Docs/AuditEvents.md) or csv.") var format: String = "jsonl"

        func run() async throws {
            guard format == "jsonl" || format == "csv" else {
                throw fail("--format must be jsonl or csv, not \"\(format)\"", code: 64)
            }
            let client = try authenticatedClient(options)
            try await client.download(
                ORACommand.AuditCommand.path(
                    "/api/v1/audit/export", [URLQueryItem(name: "format", value: format)] + filter.query))
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-verify the audit log's hash chain and checkpoints; exit 1 when it was tampered with.")
        @OptionGroup var options: ServerOption
        @Option(help: "The first sequence to check.") var from: Int64?
        @Option(help: "The last sequence to check.") var through: Int64?
        @Flag(help: "Print the server's JSON report.") var json = false

        struct Report: Decodable {
            struct Problem: Decodable {
                var kind: String
                var sequence: Int64
                var eventID: String?
                var detail: String
                enum CodingKeys: String, CodingKey {
                    case kind, sequence, detail
                    case eventID = "event_id"
                }
            }
            var intact: Bool
            var verified: Int64
            var first: Int64?
            var last: Int64?
            var head: Int64
            var checkpoints: Int
            var problem: Problem?
        }

        func run() async throws {
            let client = try authenticatedClient(options)
            var items: [URLQueryItem] = []
            if let from { items.append(URLQueryItem(name: "from", value: String(from))) }
            if let through { items.append(URLQueryItem(name: "through", value: String(through))) }
            let answer = try await client.send(
                "GET", ORACommand.AuditCommand.path("/api/v1/audit/verify", items), body: nil, timeout: .hours(2))
            guard answer.status == 200 else { throw answer.failure() }
            let report = try answer.decode(Report.self)
            if json { print(answer.body) }
            let range = report.first.map { "\($0)–\(report.last ?? $0)" } ?? "none"
            if let problem = report.problem {
                let id = problem.eventID.map { " (\($0.lowercased()))" } ?? ""
                throw fail(
                    "the audit log is NOT intact: event \(problem.sequence)\(id): \(problem.detail) [\(problem.kind)]; "
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
            let answer = try await client.send(list ? "GET" : "POST", "/api/v1/audit/checkpoints", body: nil)
            guard answer.status == 200 || answer.status == 201 else { throw answer.failure() }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            if list {
                for checkpoint in try answer.decode([AuditCheckpoint].self) {
                    print(String(decoding: try encoder.encode(checkpoint), as: UTF8.self))
                }
            } else {
                print(String(decoding: try encoder.encode(try answer.decode(AuditCheckpoint.self)), as: UTF8.self))
            }
        }
    }
}
