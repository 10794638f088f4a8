public import Foundation
public import Logging
public import ORACore
public import ORADirectory
public import ORAStore
import Synchronization

/// Logs operators in and out and tells who a token belongs to, with their groups and roles. Fails closed: when the
/// directory or the database cannot answer, nothing is allowed and the caller hears which one is missing.
public final class OperatorService: Sendable {
    /// How long a session lasts and how failed logins are limited.
    public struct Settings: Sendable {
        /// How long a token is valid after login.
        public var sessionLifetime: Duration
        /// Which groups make administrators and auditors.
        public var roles: RoleAssignments
        /// Failed-login limits.
        public var loginLimits: LoginRateLimiter.Limits
        /// How long a session lookup or change may wait for the database before the request is refused.
        public var databaseTimeout: Duration
        /// How often a session's account is checked again in the directory (exists, not locked or disabled); a
        /// session whose account fails the check is revoked.
        public var accountCheckInterval: Duration
        /// The names browsers reach the console by (the server's names, `agents.server_names`): a request that the
        /// console's cookie authenticates and that changes something must come from a page of one of them.
        public var browserNames: [String]
        /// How long a console session (the browser's cookie) may go unused before it ends; CLI tokens only expire.
        public var consoleIdleTimeout: Duration

        /// Creates settings.
        public init(
            sessionLifetime: Duration = .seconds(8 * 3600),
            roles: RoleAssignments = RoleAssignments(),
            loginLimits: LoginRateLimiter.Limits = .init(),
            databaseTimeout: Duration = .seconds(5),
            accountCheckInterval: Duration = .seconds(300),
            browserNames: [String] = ["localhost", "127.0.0.1", "::1"],
            consoleIdleTimeout: Duration = .seconds(30 * 60)
        ) {
            self.consoleIdleTimeout = consoleIdleTimeout
            self.browserNames = browserNames
            self.accountCheckInterval = accountCheckInterval
            self.databaseTimeout = databaseTimeout
            self.sessionLifetime = sessionLifetime
            self.roles = roles
            self.loginLimits = loginLimits
        }
    }

    /// What `GET /api/v1/me` reports.
    public struct Identity: Sendable, Codable {
        /// The operator.
        public var person: Operator
        /// Their groups, nested included.
        public var groups: [DistinguishedName]
        /// Their roles.
        public var roles: [OperatorRole]
        /// When the session ends.
        public var expiresAt: Date

        enum CodingKeys: String, CodingKey {
            case person = "operator"
            case groups, roles
            case expiresAt = "expires_at"
        }
    }

    /// The answer to a successful login.
    public struct LoginResult: Sendable, Codable {
        /// The bearer token; shown once.
        public var token: String
        /// When it stops working.
        public var expiresAt: Date
        /// Who logged in.
        public var person: Operator

        enum CodingKeys: String, CodingKey {
            case token
            case expiresAt = "expires_at"
            case person = "operator"
        }
    }

    let settings: Settings
    private let directory: DirectoryClient
    let store: OperatorSessionStore
    private let audit: AuditWriter
    private let journal: AuditJournal
    let logger: Logger
    private let limiter: Mutex<LoginRateLimiter>
    private let refusals = Mutex(RefusalSampler(perMinute: OperatorService.limitedLoginsRecordedPerMinute))
    let clock: ServerClock
    private let policyRoles: @Sendable () -> RoleAssignments
    private let logins: LoginCache?

    /// Creates the service.
    /// - Parameters:
    ///   - policyRoles: the role groups of the active policy set, which add to those of the configuration.
    ///   - logins: where sessions looked up are kept for a moment; without it, every request asks the database.
    init(
        settings: Settings,
        directory: DirectoryClient,
        store: OperatorSessionStore,
        audit: AuditWriter,
        journal: AuditJournal,
        logger: Logger,
        policyRoles: @escaping @Sendable () -> RoleAssignments = { RoleAssignments() },
        clock: ServerClock,
        logins: LoginCache? = nil
    ) {
        self.logins = logins
        self.policyRoles = policyRoles
        self.settings = settings
        self.directory = directory
        self.store = store
        self.audit = audit
        self.journal = journal
        self.logger = logger
        self.limiter = Mutex(LoginRateLimiter(limits: settings.loginLimits))
        self.clock = clock
    }

    /// The most bytes a password may have; longer ones are refused before the directory is asked.
    public static let longestPassword = 1024
    /// The most refused logins (over the limits) recorded one by one per source address a minute.
    static let limitedLoginsRecordedPerMinute = 20

    /// Logs in `user` with `password` from `sourceAddress`. The name is bounded and normalised first
    /// (`LoginName`); failed logins count against that name, the person the directory finds for it, and the
    /// address.
    /// - Throws: `OperatorError`: `.invalidRequest` for a name or password that cannot be anyone's,
    ///   `.invalidCredentials`, `.tooManyAttempts` when limited, `.directory` or `.databaseUnavailable` when they
    ///   are down.
    /// - Parameter idleTimeout: for the console's login, how long the session may go unused before it ends.
    public func login(
        user typed: String, password: String, sourceAddress: String, idleTimeout: Duration? = nil
    ) async throws(OperatorError) -> LoginResult {
        let name: LoginName
        do {
            name = try LoginName(typed: typed)
        } catch {
            throw .invalidRequest(error.description)
        }
        guard password.utf8.count <= Self.longestPassword else {
            throw .invalidRequest("the password must be at most \(Self.longestPassword) bytes")
        }
        let started: LoginRateLimiter.Attempt
        switch limiter.withLock({ $0.begin(account: name.key, address: sourceAddress, now: clock.instant()) }) {
        case .allowed(let attempt):
            started = attempt
        case .limited(let retryAfter):
            try await refuseLimited(name, person: nil, retryAfter: retryAfter, from: sourceAddress)
        }

        // The directory finds the person; their own failures, under whatever name, are checked before the bind.
        let inProgress = Mutex(started)
        let found = Mutex<String?>(nil)
        let personLimit = Mutex<(dn: String, wait: Duration)?>(nil)
        let person: Operator
        do {
            person = try await directory.authenticate(user: name.text, password: password) { dn in
                found.withLock { $0 = dn }
                let key = (try? DistinguishedName(dn))?.normalized ?? dn.lowercased()
                let wait = inProgress.withLock { attempt in
                    limiter.withLock { $0.admit(person: key, to: &attempt, now: clock.instant()) }
                }
                if let wait { personLimit.withLock { $0 = (dn, wait) } }
                return wait == nil
            }
        } catch .invalidCredentials {
            if let limited = personLimit.withLock({ $0 }) {
                try await refuseLimited(name, person: limited.dn, retryAfter: limited.wait, from: sourceAddress)
            }
            try await recordFailure(
                name, person: found.withLock { $0 }, reason: "invalid_credentials", outcome: .failure,
                from: sourceAddress)
            throw .invalidCredentials
        } catch {
            let attempt = inProgress.withLock { $0 }
            limiter.withLock { $0.undecided(attempt) }
            try await recordFailure(
                name, person: nil, reason: "directory_unavailable", outcome: .failure, from: sourceAddress,
                extra: ["error": .string(error.description)])
            throw .directory(error)
        }

        let attempt = inProgress.withLock { $0 }
        // A locked or disabled account does not log in, whatever the directory's bind said.
        if case .some(let refusal) = try await accountRefusal(of: person) {
            limiter.withLock { $0.undecided(attempt) }
            try await recordFailure(
                name, person: person.dn, reason: "account_disabled", outcome: .denied, from: sourceAddress,
                extra: ["detail": .string(refusal)])
            throw .invalidCredentials
        }
        limiter.withLock { $0.succeeded(attempt) }
        return try await startSession(
            for: person, until: clock.now().addingTimeInterval(settings.sessionLifetime.timeInterval),
            from: sourceAddress, idleTimeout: idleTimeout)
    }

    /// Starts a session for `person` until `expiresAt`, recorded as `operator.login` (with `details` besides the
    /// display name and expiry) in the same transaction: the log holds a login exactly when its session exists.
    /// - Throws: `OperatorError.auditUnavailable` when the transaction fails (no session, no record then).
    func startSession(
        for person: Operator, until expiresAt: Date, from sourceAddress: String, idleTimeout: Duration? = nil,
        details: [String: AuditValue] = [:]
    ) async throws(OperatorError) -> LoginResult {
        let token = OperatorToken.generate()
        let event = AuditEvent(
            .operatorLogin, time: clock.timestamp, actor: .operator(dn: person.dn, account: person.account),
            source: sourceAddress,
            outcome: .success,
            details: details.merging([
                "display_name": .string(person.displayName),
                "expires_at": .string(AuditTimestamp(expiresAt).description),
            ]) { $1 })
        do {
            try await withTimeout(settings.databaseTimeout) { [store] in
                try await store.createSession(
                    token: token, for: person, sourceAddress: sourceAddress, expiresAt: expiresAt,
                    idleTimeout: idleTimeout, recording: event)
            }
        } catch {
            logger.error(
                "refusing a login that cannot be recorded with its session",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            audit.countRefusal()
            throw .auditUnavailable
        }
        logger.info(
            "operator logged in", metadata: ["operator.dn": "\(person.dn)", "source.address": "\(sourceAddress)"])
        return LoginResult(token: token.value, expiresAt: expiresAt, person: person)
    }

    /// The session of a bearer token. Once `Settings.accountCheckInterval` has passed since its account was last
    /// confirmed, the directory is asked again: a session whose account is gone, locked or disabled is revoked.
    /// - Throws: `OperatorError.notLoggedIn` for an unknown, expired or revoked token (or one just revoked for its
    ///   account); `.databaseUnavailable`, or `.directory` when a check is due and it cannot answer.
    public func session(for token: OperatorToken) async throws(OperatorError) -> AuthenticatedSession {
        guard token.isWellFormed else { throw .notLoggedIn }
        let hash = token.hash
        if let kept = logins?.session(for: hash, at: clock.instant()), isCurrent(kept) {
            return AuthenticatedSession(id: kept.id, person: kept.person, token: token, expiresAt: kept.expiresAt)
        }
        let (generation, lookedUpAt) = (logins?.generation, clock.instant())
        let stored: OperatorSessionStore.Session?
        do {
            stored = try await withTimeout(settings.databaseTimeout) { [store] in try await store.session(for: token) }
        } catch {
            logger.error(
                "could not look up a session", metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            throw .databaseUnavailable
        }
        guard let stored else { throw .notLoggedIn }
        if isCurrent(stored) {
            if let generation { logins?.keep(stored, for: hash, lookedUpAt: generation, at: lookedUpAt) }
        } else {
            try await recheckAccount(of: stored)
        }
        return AuthenticatedSession(id: stored.id, person: stored.person, token: token, expiresAt: stored.expiresAt)
    }

    /// Whether `session`, as looked up, needs no check of its account in the directory now, and has not expired.
    private func isCurrent(_ session: OperatorSessionStore.Session) -> Bool {
        let now = clock.now()
        return session.expiresAt > now
            && now.timeIntervalSince(session.checkedAt) < settings.accountCheckInterval.timeInterval
    }

    /// Why `person`'s account may not be used now (locked, disabled, gone), or `nil` when it may.
    /// - Throws: the directory's error when it cannot say.
    private func accountRefusal(of person: Operator) async throws(OperatorError) -> String? {
        let dn: DistinguishedName
        do {
            dn = try DistinguishedName(person.dn)
        } catch {
            return "the account's DN is not valid"
        }
        let status: AccountStatus
        do {
            status = try await directory.accountStatus(of: dn)
        } catch {
            throw .directory(error)
        }
        switch status {
        case .active: return nil
        case .disabled(let why): return "the account is \(why)"
        case .missing: return "the account no longer exists in the directory"
        }
    }

    /// Checks the account of `session` in the directory: confirmed, the check is noted; refused, the session is
    /// revoked at once (recorded as `operator.session_revoked`) and the request is refused as not logged in.
    private func recheckAccount(of session: OperatorSessionStore.Session) async throws(OperatorError) {
        guard let refusal = try await accountRefusal(of: session.person) else {
            do {
                try await withTimeout(settings.databaseTimeout) { [store, clock] in
                    try await store.markChecked(session.id, at: clock.now())
                }
            } catch {
                throw .databaseUnavailable
            }
            return
        }
        logger.notice(
            "operator session revoked: the account may no longer be used",
            metadata: ["operator.dn": "\(session.person.dn)", "reason": "\(refusal)"])
        try await revoke([session], by: .system(ServerApplication.instanceName), reason: refusal, source: nil)
        throw .notLoggedIn
    }

    /// The live sessions, newest first: every operator's, or only `operatorDN`'s.
    public func liveSessions(of operatorDN: String? = nil) async throws(OperatorError) -> [OperatorSessionStore.Session]
    {
        do {
            return try await withTimeout(settings.databaseTimeout) { [store] in
                try await store.liveSessions(of: operatorDN)
            }
        } catch {
            throw .databaseUnavailable
        }
    }

    /// Revokes the live session `id`, as an administrator.
    /// - Throws: `OperatorError.unknownOperatorSession` when no live session has that id.
    public func revokeSession(
        _ id: UUID, by administrator: Operator, reason: String?, source: String
    ) async throws(OperatorError) -> OperatorSessionStore.Session {
        let found: OperatorSessionStore.Session?
        do {
            found = try await withTimeout(settings.databaseTimeout) { [store] in try await store.liveSession(id: id) }
        } catch {
            throw .databaseUnavailable
        }
        guard let found else {
            throw .unknownOperatorSession(id)
        }
        try await revoke(
            [found], by: .operator(dn: administrator.dn, account: administrator.account),
            reason: reason ?? "revoked by an administrator", source: source)
        return found
    }

    /// Revokes every live session of the operator named `name` (their DN or account name), as an administrator.
    /// - Returns: the sessions revoked; none when they had none.
    public func revokeSessions(
        of name: String, by administrator: Operator, reason: String?, source: String
    ) async throws(OperatorError) -> [OperatorSessionStore.Session] {
        let dn = try? DistinguishedName(name)
        let sessions = try await liveSessions().filter { session in
            session.person.account.lowercased() == name.lowercased()
                || (dn != nil && (try? DistinguishedName(session.person.dn)) == dn)
        }
        try await revoke(
            sessions, by: .operator(dn: administrator.dn, account: administrator.account),
            reason: reason ?? "revoked by an administrator", source: source)
        return sessions
    }

    /// Revokes `sessions` at once and records each through the journal: ending access never waits for the audit
    /// log.
    private func revoke(
        _ sessions: [OperatorSessionStore.Session], by actor: AuditActor, reason: String, source: String?
    ) async throws(OperatorError) {
        guard !sessions.isEmpty else { return }
        let revoked: [UUID]
        do {
            revoked = try await withTimeout(settings.databaseTimeout) { [store] in
                try await store.revoke(ids: sessions.map(\.id), by: actor.id, reason: reason)
            }
        } catch {
            logins?.changed(sessions.map(\.id))
            throw .databaseUnavailable
        }
        // Forgotten here and by every other replica before the answer.
        await logins?.ended(sessions.map(\.id))
        let events = sessions.filter { revoked.contains($0.id) }.map { session in
            AuditEvent(
                .operatorSessionRevoked, time: clock.timestamp, actor: actor, source: source, outcome: .success,
                details: [
                    "session": .string(session.id.uuidString.lowercased()), "operator_dn": .string(session.person.dn),
                    "account": .string(session.person.account), "reason": .string(reason),
                ])
        }
        journal.record(events)
        if let last = events.last { await journal.waitUntilStored(last.id, atMost: SessionBroker.endRecordWait) }
    }

    /// Why nobody may administer ora, when neither the configuration's `roles.administrators` nor the active policy
    /// names a group of administrators (nobody could apply a policy or revoke a machine); `nil` when someone may.
    public var administrationWarning: String? {
        guard settings.roles.administrators.isEmpty, policyRoles().administrators.isEmpty else { return nil }
        return "nobody can administer ora: roles.administrators in the configuration is empty and the active policy "
            + "names no administrators; set roles.administrators to a directory group and restart the server"
    }

    /// Who the session's operator is now: groups resolved live (within the cache's short lifetime) and roles.
    public func identity(of session: AuthenticatedSession) async throws(OperatorError) -> Identity {
        try await identity(of: session.person, expiresAt: session.expiresAt)
    }

    /// The identity of `person`, with their groups and roles as the directory has them now.
    public func identity(of person: Operator, expiresAt: Date) async throws(OperatorError) -> Identity {
        let dn: DistinguishedName
        do {
            dn = try DistinguishedName(person.dn)
        } catch {
            throw .invalidOperatorDN
        }
        let groups: Set<DistinguishedName>
        do {
            groups = try await directory.groups(of: dn)
        } catch {
            logger.error("could not resolve an operator's groups", metadata: ["error": "\(error.description)"])
            throw .directory(error)
        }
        return Identity(
            person: person,
            groups: groups.sorted { $0.original < $1.original },
            roles: settings.roles.roles(forGroups: groups).union(policyRoles().roles(forGroups: groups)).sorted(),
            expiresAt: expiresAt)
    }

    /// The identity of the request's operator, whatever their roles; `.notLoggedIn` without a valid token.
    public func identity(ofRequest session: AuthenticatedSession?) async throws(OperatorError) -> Identity {
        guard let session else { throw .notLoggedIn }
        return try await identity(of: session)
    }

    /// The identity of the request's operator, refused (`.requiresRole`) unless they have one of `roles`.
    public func require(
        _ roles: Set<OperatorRole>,
        of session: AuthenticatedSession?,
        toDo action: String
    ) async throws(OperatorError) -> Identity {
        let identity = try await identity(ofRequest: session)
        guard !roles.isDisjoint(with: identity.roles) else {
            throw .requiresRole(roles.sorted(), action: action)
        }
        return identity
    }

    /// Forgets the operators' sessions `ids` kept in memory here: another replica ended them.
    func forget(_ ids: [UUID]) {
        logins?.changed(ids)
    }

    /// Ends `session` at once; the logout is recorded afterwards through the journal (ending access never waits
    /// for the audit log).
    /// - Throws: `.databaseUnavailable` when the database cannot revoke the token (it cannot be used then either).
    public func logout(_ session: AuthenticatedSession, sourceAddress: String) async throws(OperatorError) {
        do {
            _ = try await withTimeout(settings.databaseTimeout) { [store] in try await store.revoke(session.token) }
        } catch {
            logins?.changed([session.id])
            throw .databaseUnavailable
        }
        await logins?.ended([session.id])
        let event = AuditEvent(
            .operatorLogout, time: clock.timestamp,
            actor: .operator(dn: session.person.dn, account: session.person.account),
            source: sourceAddress, outcome: .success)
        journal.record([event])
        await journal.waitUntilStored(event.id, atMost: SessionBroker.endRecordWait)
    }

    /// Records a failed login; if the record cannot be written, the attempt is refused (`.auditUnavailable`). The
    /// actor is the person's DN when the directory found them, else the name as normalised.
    private func recordFailure(
        _ name: LoginName,
        person dn: String?,
        reason: String,
        outcome: AuditOutcome,
        from sourceAddress: String,
        extra: [String: AuditValue] = [:]
    ) async throws(OperatorError) {
        try await record(
            AuditEvent(
                .operatorLoginFailed, time: clock.timestamp,
                actor: AuditActor(kind: .operator, id: dn ?? name.text, name: name.text),
                source: sourceAddress, outcome: outcome, details: extra.merging(["reason": .string(reason)]) { $1 }))
    }

    /// Refuses a login over the limits (`.tooManyAttempts`). The refusal is recorded, but at most
    /// `limitedLoginsRecordedPerMinute` per address a minute, each with how many were only counted before it: a
    /// flood of refused logins must not become a flood of audit rows.
    private func refuseLimited(
        _ name: LoginName, person dn: String?, retryAfter: Duration, from sourceAddress: String
    ) async throws(OperatorError) -> Never {
        if case .record(let suppressed) = refusals.withLock({ $0.sample(from: sourceAddress, now: clock.instant()) }) {
            var extra: [String: AuditValue] = [:]
            if suppressed > 0 { extra["suppressed_before"] = .integer(Int64(suppressed)) }
            try await recordFailure(
                name, person: dn, reason: "rate_limited", outcome: .denied, from: sourceAddress, extra: extra)
        }
        let seconds = max(1, Int(retryAfter.components.seconds) + 1)
        throw .tooManyAttempts(retryAfterSeconds: seconds)
    }

    /// Records `event`, or refuses the action (`.auditUnavailable`) when the audit log cannot take it.
    func record(_ event: AuditEvent) async throws(OperatorError) {
        do {
            try await audit.record(event)
        } catch {
            logger.error(
                "refusing an action that cannot be audited",
                metadata: ["audit.event": "\(event.name)", "error": "\(error.reason)"])
            throw .auditUnavailable
        }
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
