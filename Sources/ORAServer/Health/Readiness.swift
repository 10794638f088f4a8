/// The answer of `GET /readyz`: whether each dependency works, and why not when it does not.
public struct Readiness: Sendable, Encodable, Equatable {
    /// The state of one dependency.
    public struct Check: Sendable, Codable, Equatable {
        /// Whether it works.
        public var ready: Bool
        /// Why it does not work; absent when it does.
        public var error: String?

        /// Creates a check result.
        public init(ready: Bool, error: String? = nil) {
            self.ready = ready
            self.error = error
        }
    }

    /// PostgreSQL.
    public var database: Check
    /// The LDAP directory.
    public var directory: Check
    /// What in the configuration puts security at risk (a plain `ldap://` directory, say); encoded only when there is
    /// something to say. Warnings do not make the server unready.
    public var warnings: [String]

    /// Combines the checks.
    public init(database: Check, directory: Check, warnings: [String] = []) {
        self.database = database
        self.directory = directory
        self.warnings = warnings
    }

    /// Whether every check passed.
    public var isReady: Bool { database.ready && directory.ready }

    /// `ready` when every check passed, `not_ready` otherwise.
    public var status: String { isReady ? "ready" : "not_ready" }

    enum CodingKeys: String, CodingKey { case status, database, directory, warnings }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encode(database, forKey: .database)
        try container.encode(directory, forKey: .directory)
        if !warnings.isEmpty { try container.encode(warnings, forKey: .warnings) }
    }
}
