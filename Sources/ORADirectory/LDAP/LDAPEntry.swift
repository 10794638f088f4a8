/// One entry of a search result: its DN and the values of the attributes that were asked for.
public struct LDAPEntry: Sendable, Hashable {
    /// The entry's distinguished name as the server returned it.
    public var dn: String
    /// Attribute values by attribute name as the server spelled it. Values are raw bytes decoded as UTF-8.
    public var attributes: [String: [String]]

    /// Creates an entry.
    public init(dn: String, attributes: [String: [String]]) {
        self.dn = dn
        self.attributes = attributes
    }

    /// The values of `attribute`, matched case-insensitively as LDAP attribute descriptions are.
    public func values(_ attribute: String) -> [String] {
        let wanted = attribute.lowercased()
        return attributes.first { $0.key.lowercased() == wanted }?.value ?? []
    }

    /// The first value of `attribute`, if any.
    public func value(_ attribute: String) -> String? {
        values(attribute).first
    }
}

/// How deep a search looks below its base.
public enum LDAPScope: Sendable, Hashable {
    /// The base entry only.
    case base
    /// The base's immediate children.
    case oneLevel
    /// The base and everything below it.
    case subtree
}
