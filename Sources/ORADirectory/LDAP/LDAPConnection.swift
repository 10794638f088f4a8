import CLDAP
import ORACore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libldap connection. Its calls block, so it is only ever used from a thread-pool thread, by one caller at a
/// time; `DirectoryClient` keeps it off the event loops.
final class LDAPConnection {
    private let handle: OpaquePointer
    private let uris: String
    private let timeout: Duration

    /// Prepares a connection to the first of the settings' URIs that answers (libldap connects on the first
    /// operation), with their TLS settings and time limits. With StartTLS, the upgrade happens here.
    init(settings: DirectorySettings) throws(LDAPError) {
        self.uris = settings.uris.joined(separator: " ")
        self.timeout = settings.operationTimeout
        var handle: OpaquePointer?
        let result = ldap_initialize(&handle, self.uris)
        guard result == LDAP_SUCCESS, let handle else { throw .invalidURI(self.uris) }
        self.handle = handle

        var version = LDAP_VERSION3
        ldap_set_option(handle, LDAP_OPT_PROTOCOL_VERSION, &version)
        // Referrals would send the service account's credentials to whichever server a referral names.
        ldap_set_option(handle, LDAP_OPT_REFERRALS, nil)
        var network = timeval(settings.connectTimeout)
        ldap_set_option(handle, LDAP_OPT_NETWORK_TIMEOUT, &network)
        var operation = timeval(settings.operationTimeout)
        ldap_set_option(handle, LDAP_OPT_TIMEOUT, &operation)

        var requireCertificate = settings.tls.verifyCertificates ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER
        ldap_set_option(handle, LDAP_OPT_X_TLS_REQUIRE_CERT, &requireCertificate)
        if let caFile = settings.tls.caFile {
            ldap_set_option(handle, LDAP_OPT_X_TLS_CACERTFILE, caFile)
        }
        // The TLS options above apply to this handle only once it has a TLS context of its own.
        var isServer: Int32 = 0
        ldap_set_option(handle, LDAP_OPT_X_TLS_NEWCTX, &isServer)
        if settings.tls.startTLS {
            let result = ldap_start_tls_s(handle, nil, nil)
            if result != LDAP_SUCCESS {
                if result == LDAP_SERVER_DOWN || result == LDAP_TIMEOUT {
                    try check(result, operation: "StartTLS")
                }
                throw .tlsFailed(
                    uris: self.uris, reason: diagnosticMessage() ?? String(cString: ldap_err2string(result)))
            }
        }
    }

    deinit {
        ldap_unbind_ext_s(handle, nil, nil)
    }

    /// A new connection bound as the settings' service account.
    static func boundAsServiceAccount(_ settings: DirectorySettings) throws(LDAPError) -> LDAPConnection {
        let connection = try LDAPConnection(settings: settings)
        try connection.bind(dn: settings.bindDN, password: settings.bindPassword)
        return connection
    }

    /// Simple bind with a DN and password.
    /// - Throws: `.invalidCredentials` for a wrong DN or password; `.serverUnreachable`, `.timedOut` for outages.
    func bind(dn: String, password: String) throws(LDAPError) {
        var bytes = Array(password.utf8)
        let result = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                var credentials = berval(bv_len: ber_len_t(chars.count), bv_val: chars.baseAddress)
                return ldap_sasl_bind_s(handle, dn, ora_ldap_sasl_simple(), &credentials, nil, nil, nil)
            }
        }
        // Overwrite the copy of the password before the memory is released.
        for index in bytes.indices { bytes[index] = 0 }
        try check(result, operation: "bind")
    }

    /// Searches and returns every entry.
    /// - Parameters:
    ///   - base: the DN to search from.
    ///   - scope: how far below `base` to look.
    ///   - filter: an RFC 4515 filter; values inside it must already be escaped.
    ///   - attributes: the attributes to return; empty returns none (`1.1`).
    ///   - sizeLimit: the most entries to return; more is an error (LDAP result 4).
    func search(
        base: String,
        scope: LDAPScope,
        filter: String,
        attributes: [String],
        sizeLimit: Int32
    ) throws(LDAPError) -> [LDAPEntry] {
        let scopeValue: Int32 =
            switch scope {
            case .base: LDAP_SCOPE_BASE
            case .oneLevel: LDAP_SCOPE_ONELEVEL
            case .subtree: LDAP_SCOPE_SUBTREE
            }
        let requested = attributes.isEmpty ? ["1.1"] : attributes
        var cStrings: [UnsafeMutablePointer<CChar>?] = requested.map { strdup($0) } + [nil]
        defer { for pointer in cStrings { free(pointer) } }
        var limit = timeval(timeout)
        var message: OpaquePointer?
        let result = cStrings.withUnsafeMutableBufferPointer { attributeList in
            ldap_search_ext_s(
                handle, base, scopeValue, filter, attributeList.baseAddress, 0, nil, nil, &limit, sizeLimit, &message)
        }
        defer { if let message { ldap_msgfree(message) } }
        try check(result, operation: "search")
        return entries(of: message)
    }

    private func entries(of message: OpaquePointer?) -> [LDAPEntry] {
        var entries: [LDAPEntry] = []
        var entry = ldap_first_entry(handle, message)
        while let current = entry {
            var dn = ""
            if let rawDN = ldap_get_dn(handle, current) {
                dn = String(cString: rawDN)
                ldap_memfree(rawDN)
            }
            var attributes: [String: [String]] = [:]
            var ber: OpaquePointer?
            var attribute = ldap_first_attribute(handle, current, &ber)
            while let name = attribute {
                var values: [String] = []
                if let raw = ldap_get_values_len(handle, current, name) {
                    var index = 0
                    while let value = raw[index] {
                        let buffer = UnsafeRawBufferPointer(
                            start: value.pointee.bv_val, count: Int(value.pointee.bv_len))
                        values.append(String(decoding: buffer, as: UTF8.self))
                        index += 1
                    }
                    ldap_value_free_len(raw)
                }
                attributes[String(cString: name)] = values
                ldap_memfree(name)
                attribute = ldap_next_attribute(handle, current, ber)
            }
            if let ber { ber_free(ber, 0) }
            entries.append(LDAPEntry(dn: dn, attributes: attributes))
            entry = ldap_next_entry(handle, current)
        }
        return entries
    }

    private func check(_ result: Int32, operation: String) throws(LDAPError) {
        switch result {
        case LDAP_SUCCESS:
            return
        case LDAP_INVALID_CREDENTIALS:
            throw .invalidCredentials
        case LDAP_SERVER_DOWN, LDAP_CONNECT_ERROR:
            throw .serverUnreachable(
                uris: uris, reason: diagnosticMessage() ?? String(cString: ldap_err2string(result)))
        case LDAP_TIMEOUT, LDAP_TIMELIMIT_EXCEEDED:
            throw .timedOut(operation: operation, after: timeout)
        default:
            let message = diagnosticMessage() ?? String(cString: ldap_err2string(result))
            throw .operationFailed(operation: operation, code: result, message: message)
        }
    }

    private func diagnosticMessage() -> String? {
        var raw: UnsafeMutablePointer<CChar>?
        guard ldap_get_option(handle, LDAP_OPT_DIAGNOSTIC_MESSAGE, &raw) == LDAP_OPT_SUCCESS, let raw else {
            return nil
        }
        defer { ldap_memfree(raw) }
        let message = String(cString: raw)
        return message.isEmpty ? nil : message
    }
}

extension timeval {
    /// A `timeval` of `duration`, at least one millisecond (zero would mean "no limit" to some libldap calls).
    init(_ duration: Duration) {
        let milliseconds = max(1, duration.wholeMilliseconds)
        self.init(tv_sec: Int(milliseconds / 1_000), tv_usec: Int((milliseconds % 1_000) * 1_000))
    }
}
