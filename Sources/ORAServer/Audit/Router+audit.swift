import Foundation
import Hummingbird
import NIOCore
import ORACore
import ORAStore

extension Router where Context == ORARequestContext {
    /// Adds the audit API for auditors and administrators: search, a session's timeline, export, verification and
    /// checkpoints.
    func addAuditRoutes(audit: AuditService, operators: OperatorService) {
        let api = group("api/v1/audit").add(middleware: OperatorAuthenticationMiddleware(service: operators))
        let readers: Set<OperatorRole> = [.administrator, .auditor]

        api.get { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "search the audit log")
            var parameters = try QueryParameters(request)
            let filter = try parameters.filter()
            let limit = try parameters.integer("limit", in: 1...1000) ?? 100
            let before = try parameters.integer("before", in: 1...Int64.max)
            try parameters.rejectUnknown()
            let page = try await audit.search(filter, before: before, limit: Int(limit))
            return Self.jsonResponse(events: page.events, next: page.next)
        }

        api.get("sessions/{id}") { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "read the audit log")
            let text = context.parameters.get("id") ?? ""
            guard let id = UUID(uuidString: text) else {
                throw APIError(
                    .badRequest, code: "invalid_session", message: "\"\(text)\" is not a session id (a UUID)")
            }
            return Self.jsonResponse(events: try await audit.timeline(ofSession: id), next: nil)
        }

        api.get("export") { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "export the audit log")
            var parameters = try QueryParameters(request)
            let format = parameters.take("format") ?? "jsonl"
            guard format == "jsonl" || format == "csv" else {
                throw APIError(
                    .badRequest, code: "invalid_parameter", message: "format must be jsonl or csv, not \"\(format)\"")
            }
            let filter = try parameters.filter()
            try parameters.rejectUnknown()
            let events = audit.export(filter)
            let isCSV = format == "csv"
            let body = ResponseBody { writer in
                var buffer = ByteBuffer()
                if isCSV { buffer.writeString(AuditExport.csvHeader) }
                for try await event in events {
                    if isCSV {
                        buffer.writeString(AuditExport.csvLine(event))
                    } else {
                        buffer.writeBytes(AuditExport.json(event))
                        buffer.writeInteger(UInt8(ascii: "\n"))
                    }
                    if buffer.readableBytes >= 64 * 1024 {
                        try await writer.write(buffer)
                        buffer.clear()
                    }
                }
                if buffer.readableBytes > 0 { try await writer.write(buffer) }
                try await writer.finish(nil)
            }
            let type = isCSV ? "text/csv; charset=utf-8" : "application/x-ndjson"
            return Response(
                status: .ok,
                headers: [
                    .contentType: type,
                    .contentDisposition: "attachment; filename=\"ora-audit.\(format)\"",
                ],
                body: body)
        }

        api.get("verify") { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "verify the audit log")
            var parameters = try QueryParameters(request)
            let from = try parameters.integer("from", in: 1...Int64.max)
            let through = try parameters.integer("through", in: 1...Int64.max)
            try parameters.rejectUnknown()
            return try Response.encodedJSON(try await audit.verify(from: from, through: through))
        }

        api.get("statistics") { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "read audit statistics")
            var parameters = try QueryParameters(request)
            let until = try parameters.time("until")?.date ?? Date()
            let since = try parameters.time("since")?.date ?? until.addingTimeInterval(-7 * 86_400)
            let zoneName = parameters.take("zone") ?? "UTC"
            try parameters.rejectUnknown()
            guard zoneName.count <= 64,
                zoneName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/_+-".contains($0)) }),
                let zone = TimeZone(identifier: zoneName)
            else {
                throw APIError(
                    .badRequest, code: "invalid_parameter",
                    message: "zone must be a time zone's IANA name, such as Europe/Berlin")
            }
            guard since < until, until.timeIntervalSince(since) <= 366 * 86_400 else {
                throw APIError(
                    .badRequest, code: "invalid_parameter",
                    message: "since must come before until, at most 366 days earlier")
            }
            let statistics = try await audit.statistics(since: since, until: until, timeZone: zone)
            return try Response.encodedJSON(AuditStatisticsDocument(statistics, since: since, until: until, zone: zone))
        }

        api.get("checkpoints") { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "read audit checkpoints")
            return try Response.encodedJSON(try await audit.checkpoints())
        }

        api.post("checkpoints") { _, context -> Response in
            let identity = try await operators.require(readers, of: context.session, toDo: "make audit checkpoints")
            let checkpoint = try await audit.checkpoint(
                by: .operator(dn: identity.person.dn, account: identity.person.account), source: context.sourceAddress)
            return try Response.encodedJSON(checkpoint, status: .created)
        }
    }

    /// `{"events": [...], "next": "…"}`, each event as in the JSON export.
    private static func jsonResponse(events: [ChainedAuditEvent], next: Int64?) -> Response {
        var buffer = ByteBuffer(string: "{\"events\":[")
        for (index, event) in events.enumerated() {
            if index > 0 { buffer.writeString(",") }
            buffer.writeBytes(AuditExport.json(event))
        }
        buffer.writeString("],\"next\":\(next.map { "\"\($0)\"" } ?? "null")}")
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}

/// The audit API's filters, read from its query parameters.
extension QueryParameters {
    /// The longest text a filter may have: as long as the longest text the audit log indexes.
    static let longestAuditText = AuditLog.PreparedEvent.longestIndexedText

    /// A text filter: at most `longestAuditText` characters, without control characters (which no stored name
    /// has, and which the database refuses outright).
    mutating func text(_ name: String) throws(APIError) -> String? {
        try text(name, atMost: Self.longestAuditText)
    }

    mutating func time(_ name: String) throws(APIError) -> AuditTimestamp? {
        guard let text = take(name) else { return nil }
        guard let date = AuditTimeParser.parse(text) else {
            throw APIError(
                .badRequest, code: "invalid_parameter",
                message:
                    "\(name) must be a date (2026-11-22) or an RFC 3339 time (2026-11-22T09:00:00Z), not \"\(text)\"")
        }
        return AuditTimestamp(date)
    }

    mutating func filter() throws(APIError) -> AuditLog.Filter {
        var filter = AuditLog.Filter()
        filter.since = try time("since")
        filter.until = try time("until")
        filter.event = try text("event")
        filter.code = try text("code")
        filter.operatorName = try text("operator")
        if let name = filter.operatorName, name.contains("=") {
            do {
                _ = try DistinguishedName(name)
            } catch {
                throw APIError(
                    .badRequest, code: "invalid_parameter",
                    message: "operator must be an account name or a DN; \(error.description)")
            }
        }
        filter.machine = try text("machine")
        if let text = take("session") {
            guard let id = UUID(uuidString: text) else {
                throw APIError(
                    .badRequest, code: "invalid_parameter",
                    message: "session must be a session id (a UUID), not \"\(text)\"")
            }
            filter.session = id
        }
        filter.outcome = try choice("outcome", of: AuditOutcome.self)
        filter.text = try text("q")
        return filter
    }
}

/// Reads the times people type: a date (midnight UTC) or an RFC 3339 time, with or without fractional seconds.
enum AuditTimeParser {
    static func parse(_ text: String) -> Date? {
        if text.count == 10 {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            return formatter.date(from: text)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

/// What `GET /api/v1/audit/statistics` answers.
struct AuditStatisticsDocument: Encodable {
    struct Day: Encodable {
        var day: String
        var sessions: Int
        var denials: Int
    }

    struct Count: Encodable {
        var name: String
        var count: Int
    }

    var since: Date
    var until: Date
    var zone: String
    var days: [Day]
    var topOperators: [Count]
    var topMachines: [Count]
    var consent: [String: Int]

    init(_ statistics: AuditLog.Statistics, since: Date, until: Date, zone: TimeZone) {
        self.since = since
        self.until = until
        self.zone = zone.identifier
        days = statistics.days.map { Day(day: $0.day, sessions: $0.sessions, denials: $0.denials) }
        topOperators = statistics.topOperators.map { Count(name: $0.name, count: $0.count) }
        topMachines = statistics.topMachines.map { Count(name: $0.name, count: $0.count) }
        consent = statistics.consent
    }

    enum CodingKeys: String, CodingKey {
        case since, until, zone, days, consent
        case topOperators = "top_operators"
        case topMachines = "top_machines"
    }
}
