/// An LDAP distinguished name (RFC 4514), parsed, so that two spellings of one entry compare equal.
///
/// `CN=Helpdesk,OU=Groups,DC=Corp,DC=Example` and `cn=helpdesk, ou=groups, dc=corp, dc=example` are the same entry:
/// attribute types are case-insensitive, and the values of the naming attributes directories use (`cn`, `ou`, `dc`,
/// `uid`, `o`, …) compare case-insensitively with insignificant spaces ignored. Escapes (`\,`, `\2C`) and quoting are
/// undone before comparing. Equality and hashing use the normalised form.
public struct DistinguishedName: Sendable, Hashable, CustomStringConvertible {
    /// One `type=value` pair of a relative distinguished name.
    public struct Attribute: Sendable, Hashable {
        /// The attribute type as written (`CN`, `ou`, `2.5.4.3`).
        public var type: String
        /// The value with escapes undone.
        public var value: String
    }

    /// The relative distinguished names, most specific first (`cn=Helpdesk` before `ou=Groups`).
    public let rdns: [[Attribute]]
    /// The DN as it was given.
    public let original: String
    /// The normalised form, used for comparison: lower-case types and values, insignificant spaces removed,
    /// RFC 4514 escaping.
    public let normalized: String
    /// Each RDN in normalised form, most specific first; `normalized` is these joined with commas.
    private let normalizedRDNs: [String]
    /// The hash of `normalized`, computed once: DNs are looked up in sets and dictionaries on every decision.
    private let normalizedHash: Int

    /// The most RDNs a DN may have. Directories nest a few levels deep; a DN deeper than this is refused, so that
    /// one hostile name cannot make every decision about it walk hundreds of ancestors.
    public static let maximumDepth = 64

    /// Parses `text`.
    /// - Throws: `DistinguishedNameError` saying what is wrong and where, also for a DN of more than
    ///   `maximumDepth` RDNs.
    public init(_ text: String) throws(DistinguishedNameError) {
        var parser = DNParser(Array(text.unicodeScalars), text: text)
        let rdns = try parser.parse()
        self.init(rdns: rdns, original: text)
    }

    private init(rdns: [[Attribute]], original: String) {
        self.rdns = rdns
        self.original = original
        self.normalizedRDNs = rdns.map { rdn in
            rdn.map { "\(Self.normalizedType($0.type))=\(Self.escape(Self.normalizedValue($0.value)))" }.sorted()
                .joined(separator: "+")
        }
        self.normalized = normalizedRDNs.joined(separator: ",")
        self.normalizedHash = normalized.hashValue
    }

    /// The entry's parent, or `nil` for a one-RDN name.
    public var parent: DistinguishedName? {
        guard rdns.count > 1 else { return nil }
        let rest = Array(rdns.dropFirst())
        return DistinguishedName(rdns: rest, original: Self.format(rest))
    }

    /// This name with `ancestor` (itself, or one of its ancestors) replaced by `replacement`: in
    /// `cn=Tier 2,ou=Group,dc=corp`, `ou=Group,dc=corp` replaced by `ou=Groups,dc=corp` is `cn=Tier 2,ou=Groups,dc=corp`.
    public func replacing(_ ancestor: DistinguishedName, with replacement: DistinguishedName) -> DistinguishedName {
        let kept = Array(rdns.prefix(max(0, rdns.count - ancestor.rdns.count))) + replacement.rdns
        return DistinguishedName(rdns: kept, original: Self.format(kept))
    }

    /// Every ancestor, nearest first (for `cn=PC,ou=Kiosks,ou=Computers,dc=corp`: `ou=Kiosks,…`, `ou=Computers,…`,
    /// `dc=corp`).
    public var ancestors: [DistinguishedName] {
        var result: [DistinguishedName] = []
        var current = parent
        while let dn = current {
            result.append(dn)
            current = dn.parent
        }
        return result
    }

    /// Whether this entry is `other` or lies below it, compared RDN by RDN (an escaped comma inside a value is not
    /// a level of the tree).
    public func isWithin(_ other: DistinguishedName) -> Bool {
        other.normalizedRDNs.count <= normalizedRDNs.count
            && normalizedRDNs.suffix(other.normalizedRDNs.count).elementsEqual(other.normalizedRDNs)
    }

    /// Whether the entry is a domain component (`dc=corp,dc=example`): the root of a directory's tree, not an OU or
    /// container inside it.
    public var isDomainComponent: Bool {
        rdns.first.map { $0.count == 1 && Self.normalizedType($0[0].type) == "dc" } ?? false
    }

    /// Whether the RDN at `level` (0 is the most specific) names an organisational unit, however its type is spelt.
    func isOrganizationalUnit(level: Int) -> Bool {
        rdns[level].count == 1 && Self.normalizedType(rdns[level][0].type) == "ou"
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.normalized == rhs.normalized }
    public func hash(into hasher: inout Hasher) { hasher.combine(normalizedHash) }

    /// The DN as given.
    public var description: String { original }

    /// Escapes `value` for use as an attribute value in a DN (RFC 4514 §2.4): `"`, `+`, `,`, `;`, `<`, `>`, `\` and
    /// `=`, a leading `#` or space, a trailing space, and control characters (as `\XX`).
    public static func escape(_ value: String) -> String {
        let scalars = Array(value.unicodeScalars)
        var result = ""
        for (index, scalar) in scalars.enumerated() {
            switch scalar {
            case "\"", "+", ",", ";", "<", ">", "\\", "=":
                result += "\\" + String(scalar)
            case "#" where index == 0:
                result += "\\#"
            case " " where index == 0 || index == scalars.count - 1:
                result += "\\ "
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                result += "\\" + Hex.encode([UInt8(scalar.value)], uppercase: true)
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static let oidNames: [String: String] = [
        "2.5.4.3": "cn", "2.5.4.11": "ou", "2.5.4.10": "o", "2.5.4.6": "c", "2.5.4.7": "l", "2.5.4.8": "st",
        "0.9.2342.19200300.100.1.25": "dc", "0.9.2342.19200300.100.1.1": "uid",
    ]

    static func normalizedType(_ type: String) -> String {
        let lower = type.lowercased()
        let withoutPrefix = lower.hasPrefix("oid.") ? String(lower.dropFirst(4)) : lower
        return oidNames[withoutPrefix] ?? withoutPrefix
    }

    /// caseIgnoreMatch: case folded, leading and trailing spaces dropped, inner runs of spaces made one.
    static func normalizedValue(_ value: String) -> String {
        value.lowercased().split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    private static func format(_ rdns: [[Attribute]]) -> String {
        rdns.map { rdn in rdn.map { "\($0.type)=\(escape($0.value))" }.joined(separator: "+") }.joined(separator: ",")
    }
}

/// A distinguished name that cannot be parsed.
public struct DistinguishedNameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text that was given.
    public var text: String
    /// What is wrong.
    public var reason: String

    public var description: String { "not a valid DN (\(reason)): \(text)" }
}

private struct DNParser {
    let scalars: [Unicode.Scalar]
    let text: String
    var index = 0

    init(_ scalars: [Unicode.Scalar], text: String) {
        self.scalars = scalars
        self.text = text
    }

    mutating func parse() throws(DistinguishedNameError) -> [[DistinguishedName.Attribute]] {
        skipSpaces()
        if index == scalars.count { return [] }
        var rdns: [[DistinguishedName.Attribute]] = []
        var rdn: [DistinguishedName.Attribute] = []
        while true {
            rdn.append(try attribute())
            skipSpaces()
            guard index < scalars.count else {
                rdns.append(rdn)
                return rdns
            }
            switch scalars[index] {
            case "+":
                index += 1
            case ",", ";":
                index += 1
                rdns.append(rdn)
                rdn = []
                guard rdns.count < DistinguishedName.maximumDepth else {
                    throw fail("more than \(DistinguishedName.maximumDepth) RDNs")
                }
            default:
                throw fail("unexpected \"\(scalars[index])\" at position \(index + 1)")
            }
        }
    }

    private mutating func attribute() throws(DistinguishedNameError) -> DistinguishedName.Attribute {
        skipSpaces()
        let start = index
        while index < scalars.count, scalars[index] != "=", scalars[index] != " " {
            let scalar = scalars[index]
            if scalar == "," || scalar == "+" || scalar == ";" {
                throw fail("an empty part between separators at position \(index + 1)")
            }
            guard
                scalar.properties.isAlphabetic && scalar.isASCII || ("0"..."9").contains(scalar) || scalar == "-"
                    || scalar == "."
            else {
                throw fail("an attribute type may only hold letters, digits, '-' and '.', found \"\(scalar)\"")
            }
            index += 1
        }
        let type = String(String.UnicodeScalarView(scalars[start..<index]))
        guard !type.isEmpty else { throw fail("missing attribute type at position \(start + 1)") }
        guard Self.isAttributeType(type) else {
            throw fail("\"\(type)\" is not an attribute type (a name such as cn, or a dotted number such as 2.5.4.3)")
        }
        skipSpaces()
        guard index < scalars.count, scalars[index] == "=" else { throw fail("missing '=' after \(type)") }
        index += 1  // "="
        skipSpaces()
        return DistinguishedName.Attribute(type: type, value: try value())
    }

    /// RFC 4514 §3: a descriptor (`ALPHA *(ALPHA / DIGIT / "-")`) or a numeric OID (`number 1*("." number)`,
    /// without leading zeros), optionally after RFC 2253's one `OID.` prefix before a numeric OID.
    static func isAttributeType(_ type: String) -> Bool {
        let scalars = Array(type.unicodeScalars)
        func isLetter(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) }
        func isDigit(_ scalar: Unicode.Scalar) -> Bool { ("0"..."9").contains(scalar) }
        func isNumericOID(_ scalars: ArraySlice<Unicode.Scalar>) -> Bool {
            let numbers = scalars.split(separator: ".", omittingEmptySubsequences: false)
            return numbers.count >= 2
                && numbers.allSatisfy { number in
                    !number.isEmpty && number.allSatisfy(isDigit) && (number.count == 1 || number.first != "0")
                }
        }
        if scalars.count > 4, String(String.UnicodeScalarView(scalars[..<4])).lowercased() == "oid." {
            return isNumericOID(scalars[4...])
        }
        if let first = scalars.first, isLetter(first) {
            return scalars.allSatisfy { isLetter($0) || isDigit($0) || $0 == "-" }
        }
        return isNumericOID(scalars[...])
    }

    private mutating func value() throws(DistinguishedNameError) -> String {
        if index < scalars.count, scalars[index] == "#" { return try hexString() }
        if index < scalars.count, scalars[index] == "\"" { return try quoted() }
        var bytes: [UInt8] = []
        var trailingUnescapedSpaces = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "," || scalar == "+" || scalar == ";" { break }
            if scalar == "\\" {
                bytes += try escaped()
                trailingUnescapedSpaces = 0
                continue
            }
            if scalar == "\"" || scalar == "<" || scalar == ">" || scalar.value == 0 {
                throw fail("\"\(scalar)\" must be escaped in a value (position \(index + 1))")
            }
            trailingUnescapedSpaces = scalar == " " ? trailingUnescapedSpaces + 1 : 0
            bytes += Array(String(scalar).utf8)
            index += 1
        }
        bytes.removeLast(trailingUnescapedSpaces)
        guard let value = String(validating: bytes, as: UTF8.self) else { throw fail("a value is not valid UTF-8") }
        return value
    }

    private mutating func escaped() throws(DistinguishedNameError) -> [UInt8] {
        index += 1  // "\"
        guard index < scalars.count else { throw fail("a trailing '\\' escapes nothing") }
        if let high = scalars[index].hexValue {
            guard index + 1 < scalars.count, let low = scalars[index + 1].hexValue else {
                throw fail("'\\' must be followed by two hex digits or a special character (position \(index))")
            }
            index += 2
            return [UInt8(high << 4 | low)]
        }
        let scalar = scalars[index]
        guard " \"#+,;<=>\\".unicodeScalars.contains(scalar) else {
            throw fail("\"\\\(scalar)\" is not a valid escape (position \(index))")
        }
        index += 1
        return [UInt8(scalar.value)]
    }

    private mutating func quoted() throws(DistinguishedNameError) -> String {
        index += 1
        var result = ""
        while index < scalars.count, scalars[index] != "\"" {
            if scalars[index] == "\\", index + 1 < scalars.count {
                index += 1
            }
            result.unicodeScalars.append(scalars[index])
            index += 1
        }
        guard index < scalars.count else { throw fail("unterminated quoted value") }
        index += 1
        return result
    }

    private mutating func hexString() throws(DistinguishedNameError) -> String {
        index += 1
        var bytes: [UInt8] = []
        while index + 1 < scalars.count, let high = scalars[index].hexValue, let low = scalars[index + 1].hexValue {
            bytes.append(UInt8(high << 4 | low))
            index += 2
        }
        guard !bytes.isEmpty else { throw fail("'#' must be followed by hex digits") }
        // A BER-encoded value; ora only needs it to compare, so the raw bytes stand for it.
        return "#" + Hex.encode(bytes)
    }

    private mutating func skipSpaces() {
        while index < scalars.count, scalars[index] == " " { index += 1 }
    }

    private func fail(_ reason: String) -> DistinguishedNameError {
        DistinguishedNameError(text: text, reason: reason)
    }
}

extension Unicode.Scalar {
    fileprivate var hexValue: UInt32? {
        switch self {
        case "0"..."9": return value - 48
        case "a"..."f": return value - 87
        case "A"..."F": return value - 55
        default: return nil
        }
    }
}

/// A DN travels as its text, as given; reading it back parses it, and text that is not a DN is refused.
extension DistinguishedName: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(original)
    }
}
