import Logging
public import ORADirectory
public import ORAStore

/// Checks the database and the directory concurrently, each within a time limit, for `GET /readyz`.
public struct ReadinessCheck: Sendable {
    private let database: DatabaseProbe
    private let directory: DirectoryClient
    private let timeout: Duration
    private let warnings: @Sendable () -> [String]

    /// Creates a check.
    /// - Parameters:
    ///   - database: probes PostgreSQL.
    ///   - directory: reaches LDAP with the service account.
    ///   - timeout: how long each check may take before it counts as failed.
    ///   - warnings: what else an administrator should know now (nobody can administer, …), besides the directory
    ///     settings' own warnings.
    public init(
        database: DatabaseProbe, directory: DirectoryClient, timeout: Duration = .seconds(3),
        warnings: @escaping @Sendable () -> [String] = { [] }
    ) {
        self.database = database
        self.directory = directory
        self.timeout = timeout
        self.warnings = warnings
    }

    /// Runs both checks.
    public func run() async -> Readiness {
        async let database = check(name: "database") { try await self.database.ping() }
        async let directory = check(name: "directory") { try await self.directory.checkReachable() }
        return await Readiness(
            database: database, directory: directory,
            warnings: self.directory.settings.securityWarnings + warnings())
    }

    private func check(name: String, _ body: @escaping @Sendable () async throws -> Void) async -> Readiness.Check {
        let timeout = self.timeout
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw ReadinessTimeout(after: timeout)
                }
                try await group.next()
                group.cancelAll()
            }
            return Readiness.Check(ready: true)
        } catch let error as LDAPError {
            return Readiness.Check(ready: false, error: error.description)
        } catch let error as DatabaseUnavailableError {
            return Readiness.Check(ready: false, error: error.description)
        } catch let error as ReadinessTimeout {
            return Readiness.Check(ready: false, error: "no answer within \(error.after)")
        } catch {
            return Readiness.Check(ready: false, error: DatabaseErrorDescription.describe(error))
        }
    }
}

private struct ReadinessTimeout: Error {
    var after: Duration
}
