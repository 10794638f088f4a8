import Foundation

/// The canonical encoding of an audit event, the bytes its chain hash covers, as specified in
/// `Docs/AuditEvents.md`: a JSON object with every field present (null when empty), keys sorted, no white space,
/// strings escaped only where JSON requires it (`"`, `\`, and U+0000–U+001F, as `\b \t \n \f \r` or `\u00xx`),
/// integers in decimal, times in `AuditTimestamp`'s form, object names sorted by their UTF-8 bytes. It is what
/// Python's `json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes, and RFC 8785
/// (JCS) for every document whose names are ASCII, which ora's own always are.
public enum AuditCanonicalEncoding {
    /// The encoding of `event` at position `sequence` of the chain, as UTF-8.
    public static func encode(_ event: AuditEvent, sequence: Int64) -> [UInt8] {
        let parts = parts(event)
        return parts.before + Array(String(sequence).utf8) + parts.after
    }

    /// The encoding of `event` in two parts, before and after the sequence number, so that the work can be done
    /// before the event's place in the chain is known; with the encodings of its details and time on their own,
    /// which the database's columns take as they are.
    static func parts(_ event: AuditEvent) -> (before: [UInt8], after: [UInt8], details: [UInt8], time: [UInt8]) {
        var details = JSONWriter()
        details.object(event.details)
        var time: [UInt8] = []
        event.time.appendText(to: &time)
        var output = JSONWriter()
        output.raw("{\"actor\":{\"id\":")
        output.string(event.actor.id)
        output.raw(",\"kind\":")
        output.string(event.actor.kind.rawValue)
        output.raw(",\"name\":")
        output.optionalString(event.actor.name)
        output.raw("},\"code\":")
        output.string(event.code)
        output.raw(",\"details\":")
        output.bytes.append(contentsOf: details.bytes)
        output.raw(",\"event\":")
        output.string(event.name)
        output.raw(",\"id\":")
        output.string(event.id.lowercasedText)
        output.raw(",\"machine\":")
        output.optionalString(event.machine)
        output.raw(",\"outcome\":")
        output.string(event.outcome.rawValue)
        output.raw(",\"policy\":")
        if let policy = event.policy {
            output.raw("{\"names\":[")
            for (index, name) in policy.names.enumerated() {
                if index > 0 { output.raw(",") }
                output.string(name)
            }
            output.raw("],\"version\":")
            if let version = policy.version { output.raw(String(version)) } else { output.raw("null") }
            output.raw("}")
        } else {
            output.raw("null")
        }
        output.raw(",\"sequence\":")
        let before = output.bytes
        output = JSONWriter()
        output.raw(",\"session\":")
        output.optionalString(event.session?.lowercasedText)
        output.raw(",\"source\":")
        output.optionalString(event.source)
        output.raw(",\"time\":\"")
        output.bytes.append(contentsOf: time)
        output.raw("\"}")
        return (before, output.bytes, details.bytes, time)
    }

    /// `value` in canonical form, as exports, syslog and the CLI write details (the database column takes
    /// `PreparedAuditEvent.detailsText`, encoded with the hash).
    public static func encode(_ value: AuditValue) -> [UInt8] {
        var output = JSONWriter()
        output.value(value)
        return output.bytes
    }
}

/// Appends canonical JSON to a byte buffer.
struct JSONWriter {
    var bytes: [UInt8] = []

    init() {
        bytes.reserveCapacity(512)
    }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    mutating func optionalString(_ text: String?) {
        if let text { string(text) } else { raw("null") }
    }

    mutating func string(_ text: String) {
        bytes.append(0x22)
        // Most text needs no escape: copied at once.
        var plain = true
        for byte in text.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5c {
            plain = false
            break
        }
        guard !plain else {
            bytes.append(contentsOf: text.utf8)
            bytes.append(0x22)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case 0x22: bytes.append(contentsOf: [0x5c, 0x22])
            case 0x5c: bytes.append(contentsOf: [0x5c, 0x5c])
            case 0x08: bytes.append(contentsOf: [0x5c, 0x62])
            case 0x09: bytes.append(contentsOf: [0x5c, 0x74])
            case 0x0a: bytes.append(contentsOf: [0x5c, 0x6e])
            case 0x0c: bytes.append(contentsOf: [0x5c, 0x66])
            case 0x0d: bytes.append(contentsOf: [0x5c, 0x72])
            case 0x00..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5c, 0x75, 0x30, 0x30, digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(0x22)
    }

    mutating func object(_ values: [String: AuditValue]) {
        bytes.append(0x7b)
        // Names are ASCII (checked when the event is made), so byte order is code point and UTF-16 order.
        for (index, key) in values.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
            if index > 0 { bytes.append(0x2c) }
            string(key)
            bytes.append(0x3a)
            value(values[key]!)
        }
        bytes.append(0x7d)
    }

    mutating func value(_ value: AuditValue) {
        switch value {
        case .string(let text): string(text)
        case .integer(let number): raw(String(number))
        case .bool(let flag): raw(flag ? "true" : "false")
        case .null: raw("null")
        case .array(let values):
            bytes.append(0x5b)
            for (index, element) in values.enumerated() {
                if index > 0 { bytes.append(0x2c) }
                self.value(element)
            }
            bytes.append(0x5d)
        case .object(let values): object(values)
        }
    }
}
