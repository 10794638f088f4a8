public import Foundation

/// How audit events leave the server: as JSON (one object per event: the canonical document plus `hash` and
/// `previous_hash`, so that anyone can re-verify an export) and as CSV for spreadsheets.
public enum AuditExport {
    /// One event as a JSON object: its canonical encoding with `hash` and `previous_hash` added, hex.
    public static func json(_ chained: ChainedAuditEvent) -> [UInt8] {
        var bytes = AuditCanonicalEncoding.encode(chained.event, sequence: chained.sequence)
        bytes.removeLast()
        var writer = JSONWriter()
        writer.raw(",\"hash\":")
        writer.string(Hex.encode(chained.hash))
        writer.raw(",\"previous_hash\":")
        writer.string(Hex.encode(chained.previousHash))
        writer.raw("}")
        return bytes + writer.bytes
    }

    /// The CSV header line, with CRLF.
    public static let csvHeader =
        "sequence,time,event,code,outcome,actor_kind,actor_id,actor_name,machine,session,source,policy_version,"
        + "policy_names,details,previous_hash,hash\r\n"

    /// One event as a CSV line (RFC 4180, CRLF), with the details as canonical JSON.
    ///
    /// A field that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage
    /// return) gets a leading `'`, so opening an export cannot run what a user or machine name smuggled in.
    public static func csvLine(_ chained: ChainedAuditEvent) -> String {
        let event = chained.event
        let fields: [String] = [
            String(chained.sequence),
            event.time.description,
            event.name,
            event.code,
            event.outcome.rawValue,
            event.actor.kind.rawValue,
            event.actor.id,
            event.actor.name ?? "",
            event.machine ?? "",
            event.session?.uuidString.lowercased() ?? "",
            event.source ?? "",
            event.policy?.version.map(String.init) ?? "",
            event.policy?.names.joined(separator: ";") ?? "",
            String(decoding: AuditCanonicalEncoding.encode(.object(event.details)), as: UTF8.self),
            Hex.encode(chained.previousHash),
            Hex.encode(chained.hash),
        ]
        return fields.map(csvField).joined(separator: ",") + "\r\n"
    }

    static func csvField(_ value: String) -> String {
        var text = value
        if let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) {
            text = "'" + text
        }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// An audit event as the API and the JSON export show it, for clients to decode.
public struct AuditEventDocument: Sendable, Codable, Hashable {
    /// The chain position.
    public var sequence: Int64
    /// The event id.
    public var id: UUID
    /// RFC 3339 time with microseconds.
    public var time: String
    /// The event name.
    public var event: String
    /// The stable code.
    public var code: String
    /// Who.
    public var actor: AuditActor
    /// Which machine.
    public var machine: String?
    /// Which session.
    public var session: UUID?
    /// From where.
    public var source: String?
    /// Under which policy.
    public var policy: AuditEvent.PolicyReference?
    /// How it turned out.
    public var outcome: AuditOutcome
    /// Everything else.
    public var details: [String: AuditValue]
    /// The chain hash, hex.
    public var hash: String
    /// The previous event's hash, hex.
    public var previousHash: String

    enum CodingKeys: String, CodingKey {
        case sequence, id, time, event, code, actor, machine, session, source, policy, outcome, details, hash
        case previousHash = "previous_hash"
    }
}
