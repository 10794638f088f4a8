public import Logging
public import NIOPosix
import ORACore

/// ora's access to the directory: operator login, group resolution and computer lookup, over a pool of
/// service-account connections, with a short cache. Every libldap call runs on a `NIOThreadPool` thread, never on an
/// event loop.
public final class DirectoryClient: Sendable {
    /// The settings this client connects with.
    public let settings: DirectorySettings
    let threadPool: NIOThreadPool
    let pool: LDAPConnectionPool
    let logger: Logger
    let groupCache: DirectoryCache<DistinguishedName, Set<DistinguishedName>>
    let computerCache: DirectoryCache<String, Computer>
    let observer: Observer?

    /// Told of every request to the directory: its operation (`bind`, `search` or `check`), how long it took, and
    /// whether it failed.
    public typealias Observer = @Sendable (_ operation: String, _ duration: Duration, _ failed: Bool) -> Void

    /// Creates a client.
    /// - Parameters:
    ///   - settings: servers, TLS, service account, layout and limits.
    ///   - threadPool: where the blocking libldap calls run.
    ///   - logger: where failed logins and directory problems are logged (never passwords).
    ///   - observer: told of every request (for the server's metrics).
    ///   - now: the clock for the cache; tests inject their own.
    public init(
        settings: DirectorySettings,
        threadPool: NIOThreadPool = .singleton,
        logger: Logger = Logger(label: "ora.directory"),
        observer: Observer? = nil,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.observer = observer
        self.settings = settings
        self.threadPool = threadPool
        self.pool = LDAPConnectionPool(settings: settings)
        self.logger = logger
        self.groupCache = DirectoryCache(timeToLive: settings.cacheTTL, capacity: settings.cacheCapacity, now: now)
        self.computerCache = DirectoryCache(timeToLive: settings.cacheTTL, capacity: settings.cacheCapacity, now: now)
    }

    /// Binds as the service account and reads the base entry on a new connection: the directory is reachable,
    /// the account works and can see the base.
    /// - Throws: `LDAPError` saying what is wrong.
    public func checkReachable() async throws(LDAPError) {
        let settings = self.settings
        try await run("check") { () throws(LDAPError) in
            let connection = try LDAPConnection.boundAsServiceAccount(settings)
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
        try await run("bind") { () throws(LDAPError) in
            try LDAPConnection(settings: settings).bind(dn: dn, password: password)
        }
    }

    /// Searches with a pooled service-account connection.
    /// - Parameters:
    ///   - base: the DN to search from.
    ///   - scope: how far below `base` to look.
    ///   - filter: an RFC 4515 filter whose values are already escaped (see `LDAPFilter`).
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
        let pool = self.pool
        return try await run("search") { () throws(LDAPError) in
            try pool.withConnection { connection throws(LDAPError) in
                try connection.search(
                    base: base, scope: scope, filter: filter, attributes: attributes, sizeLimit: sizeLimit)
            }
        }
    }

    /// Runs `body`, a request of `operation`, on a thread of the pool, and tells the observer how it went. Wrong
    /// credentials are an answer, not a failure of the directory.
    func run<Result: Sendable>(
        _ operation: String, _ body: @escaping @Sendable () throws(LDAPError) -> Result
    ) async throws(LDAPError) -> Result {
        let started = ContinuousClock.now
        do {
            let result = try await threadPool.runIfActive { () throws -> Result in try body() }
            observer?(operation, ContinuousClock.now - started, false)
            return result
        } catch let error as LDAPError {
            var failed = true
            if case .invalidCredentials = error { failed = false }
            observer?(operation, ContinuousClock.now - started, failed)
            throw error
        } catch {
            throw .serverUnreachable(uris: settings.uris.joined(separator: " "), reason: "ora is shutting down")
        }
    }
}
