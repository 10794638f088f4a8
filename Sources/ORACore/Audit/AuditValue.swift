/// A value in an audit event's structured details: the JSON types without fractions, so that every value has
/// exactly one canonical encoding.
public enum AuditValue: Sendable, Hashable {
    /// Text, stored exactly as received (a NUL is replaced by U+FFFD, which PostgreSQL cannot store).
    case string(String)
    /// A whole number.
    case integer(Int64)
    /// True or false.
    case bool(Bool)
    /// No value.
    case null
    /// A list.
    case array([AuditValue])
    /// Named values; names are lowercase ASCII letters, digits and underscores.
    case object([String: AuditValue])
}

extension AuditValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: AuditValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, AuditValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension AuditValue {
    /// `value` as text, or null.
    public static func text(_ value: String?) -> AuditValue { value.map { .string($0) } ?? .null }

    /// The text, when this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number, when this is an integer.
    public var integerValue: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The same value with every NUL replaced, as stored.
    var storable: AuditValue {
        switch self {
        case .string(let value): return .string(AuditText.storable(value))
        case .array(let values): return .array(values.map(\.storable))
        case .object(let values): return .object(values.mapValues(\.storable))
        case .integer, .bool, .null: return self
        }
    }
}

extension AuditValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([AuditValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: AuditValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "an audit value is text, a whole number, true, false, null, a list or an object")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .array(let values): try container.encode(values)
        case .object(let values): try container.encode(values)
        }
    }
}
