/// An e-mail address as ora sends to it: one plain `local@domain` address in ASCII, without a display name,
/// comments or quoting, so that it can be put in an SMTP command and a mail header as it is. An address that breaks
/// a rule is refused, never cleaned up. The domain is kept in lower case (domains compare case-insensitively); the
/// local part as written.
public struct MailAddress: Sendable, Hashable, CustomStringConvertible, Codable {
    /// The part before the `@`.
    public let localPart: String
    /// The domain, in lower case.
    public let domain: String

    /// Checks `text`.
    /// - Throws: `MailAddressError` saying what is wrong with it.
    public init(_ text: String) throws(MailAddressError) {
        guard text.utf8.count <= 254 else { throw MailAddressError(text, "it is longer than 254 characters") }
        guard text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f }) else {
            throw MailAddressError(text, "it may hold only ASCII letters, digits and punctuation, without spaces")
        }
        guard let at = text.lastIndex(of: "@") else { throw MailAddressError(text, "it has no @") }
        let local = String(text[..<at])
        let domain = String(text[text.index(after: at)...]).lowercased()
        guard !local.isEmpty, local.utf8.count <= 64 else {
            throw MailAddressError(text, "the part before the @ must have 1 to 64 characters")
        }
        guard local.utf8.allSatisfy(Self.isAtomByte), !local.hasPrefix("."), !local.hasSuffix("."),
            !local.contains("..")
        else {
            throw MailAddressError(
                text,
                "the part before the @ may hold letters, digits, dots (not two in a row, not first or last) "
                    + "and !#$%&'*+-/=?^_`{|}~")
        }
        try Self.checkDomain(domain, in: text)
        self.localPart = local
        self.domain = domain
    }

    /// Checks a domain alone, as policy names the domains invitations may be mailed to.
    /// - Throws: `MailAddressError` saying what is wrong with it.
    public static func domain(_ text: String) throws(MailAddressError) -> String {
        let domain = text.lowercased()
        try checkDomain(domain, in: text)
        return domain
    }

    public var description: String { localPart + "@" + domain }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private static func checkDomain(_ domain: String, in text: String) throws(MailAddressError) {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard !domain.isEmpty, domain.utf8.count <= 253, labels.count >= 2 else {
            throw MailAddressError(text, "the domain must be a name with at least one dot, such as corp.example")
        }
        for label in labels {
            guard (1...63).contains(label.utf8.count), label.utf8.allSatisfy(Self.isDomainByte),
                label.first != "-", label.last != "-"
            else {
                throw MailAddressError(
                    text, "each part of the domain must have 1 to 63 letters, digits or hyphens, not first or last")
            }
        }
    }

    private static func isDomainByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2d
    }

    /// RFC 5322's atext, and the dot.
    private static func isAtomByte(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39)
            || "!#$%&'*+-/=?^_`{|}~.".utf8.contains(byte)
    }
}

/// Why a text is not an e-mail address ora sends to.
public struct MailAddressError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text, as given.
    public var text: String
    /// What is wrong with it.
    public var reason: String

    init(_ text: String, _ reason: String) {
        self.text = text
        self.reason = reason
    }

    public var description: String {
        "\"\(AuditText.escaped(String(text.prefix(300))))\" is not an e-mail address ora sends to: \(reason)"
    }
}
