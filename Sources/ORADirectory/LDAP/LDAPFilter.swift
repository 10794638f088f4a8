import CLDAP

/// Building search filters from templates without letting a value change the filter's structure.
public enum LDAPFilter {
    /// Escapes `value` for use inside a filter (RFC 4515) with libldap's `ldap_bv2escaped_filter_value`: `*`, `(`,
    /// `)`, `\` and NUL become `\2A`, `\28`, `\29`, `\5C` and `\00`, and every byte outside ASCII is escaped too
    /// (`Müller` becomes `M\C3\BCller`), which servers match as the same value.
    public static func escape(_ value: String) -> String {
        // libldap answers an empty value with an empty result and no buffer.
        guard !value.isEmpty else { return "" }
        var bytes = Array(value.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                var input = berval(bv_len: ber_len_t(chars.count), bv_val: chars.baseAddress)
                var output = berval(bv_len: 0, bv_val: nil)
                guard ldap_bv2escaped_filter_value(&input, &output) == LDAP_SUCCESS, let escaped = output.bv_val else {
                    // libldap fails only when it cannot allocate memory; the value is never passed on unescaped.
                    fatalError("libldap could not allocate memory to escape a filter value")
                }
                defer { ber_memfree(escaped) }
                return String(
                    decoding: UnsafeRawBufferPointer(start: escaped, count: Int(output.bv_len)), as: UTF8.self)
            }
        }
    }

    /// Replaces each `{name}` in `template` with the escaped value of `name`.
    /// - Parameters:
    ///   - template: a filter such as `(&(objectClass=inetOrgPerson)(uid={user}))`.
    ///   - values: the values by placeholder name.
    /// - Returns: the filter.
    public static func fill(_ template: String, with values: [String: String]) -> String {
        var result = template
        for (name, value) in values {
            result = result.replacing("{\(name)}", with: escape(value))
        }
        return result
    }
}
