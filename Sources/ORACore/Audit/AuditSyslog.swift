import Foundation

/// Audit events as RFC 5424 syslog messages for a SIEM. Every field travels as structured data (SD-ID
/// `ora@32473`) with the details as canonical JSON; the free-text message names only the event and outcome, so
/// nothing from outside ends up in it.
public enum AuditSyslog {
    /// The structured data element's id (32473 is the private enterprise number RFC 5612 reserves for examples).
    public static let structuredDataID = "ora@32473"

    /// One message, without framing.
    /// - Parameters:
    ///   - hostname: the sending server's host name.
    ///   - facility: the syslog facility, 13 ("log audit") by default.
    public static func message(_ chained: ChainedAuditEvent, hostname: String, facility: Int = 13) -> String {
        let event = chained.event
        let severity = event.outcome == .success ? 5 : 4  // notice, or warning for denials and failures
        var parameters: [(String, String)] = [
            ("sequence", String(chained.sequence)),
            ("id", event.id.uuidString.lowercased()),
            ("event", event.name),
            ("code", event.code),
            ("outcome", event.outcome.rawValue),
            ("actor_kind", event.actor.kind.rawValue),
            ("actor_id", event.actor.id),
        ]
        if let name = event.actor.name { parameters.append(("actor_name", name)) }
        if let machine = event.machine { parameters.append(("machine", machine)) }
        if let session = event.session { parameters.append(("session", session.uuidString.lowercased())) }
        if let source = event.source { parameters.append(("source", source)) }
        if let policy = event.policy {
            if let version = policy.version { parameters.append(("policy_version", String(version))) }
            for name in policy.names { parameters.append(("policy", name)) }
        }
        parameters.append(
            ("details", String(decoding: AuditCanonicalEncoding.encode(.object(event.details)), as: UTF8.self)))
        parameters.append(("previous_hash", Hex.encode(chained.previousHash)))
        parameters.append(("hash", Hex.encode(chained.hash)))

        let structuredData =
            "[" + structuredDataID
            + parameters.map { " \($0.0)=\"\(parameterValue($0.1))\"" }.joined() + "]"
        let header =
            "<\(facility * 8 + severity)>1 \(event.time) \(headerField(hostname, limit: 255)) ora - \(event.code)"
        return header + " " + structuredData + " " + "\(event.name) \(event.outcome.rawValue)"
    }

    /// The message framed by octet counting (RFC 6587), as TCP and TLS transports carry it.
    public static func frame(_ message: String) -> [UInt8] {
        Array("\(message.utf8.count) ".utf8) + Array(message.utf8)
    }

    /// A PARAM-VALUE: `"`, `\` and `]` escaped as RFC 5424 requires, and control characters written as `\u{…}` so
    /// that a value cannot break a collector that splits on line ends.
    static func parameterValue(_ value: String) -> String {
        var result = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"", "\\", "]":
                result.unicodeScalars.append("\\")
                result.unicodeScalars.append(scalar)
            case _ where AuditText.isControl(scalar):
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// A header field: printable US-ASCII only, `-` when empty.
    static func headerField(_ value: String, limit: Int) -> String {
        let printable = String(String.UnicodeScalarView(value.unicodeScalars.filter { (33...126).contains($0.value) }))
        return printable.isEmpty ? "-" : String(printable.prefix(limit))
    }
}
