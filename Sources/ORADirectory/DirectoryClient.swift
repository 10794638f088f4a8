public import NIOPosix

/// ora's access to the directory. Every libldap call runs on a `NIOThreadPool` thread, never on an event loop.
public struct DirectoryClient: Sendable {
    /// The settings this client connects with.
    public let settings: DirectorySettings
    private let threadPool: NIOThreadPool

    /// Creates a client.
    /// - Parameters:
    ///   - settings: servers, service account and time limits.
    ///   - threadPool: where the blocking libldap calls run.
    public init(settings: DirectorySettings, threadPool: NIOThreadPool = .singleton) {
        self.settings = settings
        self.threadPool = threadPool
    }

    /// Binds as the service account and reads the base entry: the directory is reachable, the account works and
    /// can see the base.
    /// - Throws: `LDAPError` saying what is wrong.
    public func checkReachable() async throws(LDAPError) {
        let settings = self.settings
        _ = try await run { () throws(LDAPError) in
            let connection = try LDAPConnection(
                uris: settings.uris,
                connectTimeout: settings.connectTimeout,
                timeout: settings.operationTimeout
            )
            try connection.bind(dn: settings.bindDN, password: settings.bindPassword)
            let base = try connection.search(
                base: settings.baseDN, scope: .base, filter: "(objectClass=*)", attributes: [], sizeLimit: 1)
            guard !base.isEmpty else {
                throw LDAPError.operationFailed(
                    operation: "search", code: 32, message: "base DN \(settings.baseDN) not found or not readable")
            }
        }
    }

    /// Binds as `dn` with `password` on a connection of its own, then closes it.
    /// - Throws: `.invalidCredentials` when the directory rejects them, or an outage error.
    public func bind(dn: String, password: String) async throws(LDAPError) {
        let settings = self.settings
        try await run { () throws(LDAPError) in
            let connection = try LDAPConnection(
                uris: settings.uris,
                connectTimeout: settings.connectTimeout,
                timeout: settings.operationTimeout
            )
            try connection.bind(dn: dn, password: password)
        }
    }

    /// Binds as the service account and searches.
    /// - Parameters:
    ///   - base: the DN to search from.
    ///   - scope: how far below `base` to look.
    ///   - filter: an RFC 4515 filter whose values are already escaped.
    ///   - attributes: the attributes to return.
    ///   - sizeLimit: the most entries to accept.
    /// - Returns: the entries found.
    public func search(
        base: String,
        scope: LDAPScope,
        filter: String,
        attributes: [String],
        sizeLimit: Int32 = 500
    ) async throws(LDAPError) -> [LDAPEntry] {
        let settings = self.settings
        return try await run { () throws(LDAPError) in
            let connection = try LDAPConnection(
                uris: settings.uris,
                connectTimeout: settings.connectTimeout,
                timeout: settings.operationTimeout
            )
            try connection.bind(dn: settings.bindDN, password: settings.bindPassword)
            return try connection.search(
                base: base, scope: scope, filter: filter, attributes: attributes, sizeLimit: sizeLimit)
        }
    }

    private func run<Result: Sendable>(
        _ body: @escaping @Sendable () throws(LDAPError) -> Result
    ) async throws(LDAPError) -> Result {
        do {
            return try await threadPool.runIfActive { () throws -> Result in try body() }
        } catch let error as LDAPError {
            throw error
        } catch {
            throw .serverUnreachable(uris: settings.uris.joined(separator: " "), reason: "ora is shutting down")
        }
    }
}
