/// Why the schema could not be brought up to date.
public enum MigrationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An applied migration's statements differ from the ones this build carries.
    case checksumMismatch(version: Int, name: String)
    /// The database has migrations this build does not know: it was migrated by a newer ora.
    case databaseIsNewer(databaseVersion: Int, knownVersion: Int)
    /// The list of migrations is not numbered 1, 2, 3, … (a programming error caught before touching the database).
    case invalidSequence(String)
    /// A migration's statements failed; nothing of it was applied.
    case statementFailed(version: Int, name: String, reason: String)
    /// The database could not be reached or refused the connection.
    case databaseUnavailable(reason: String)

    public var description: String {
        switch self {
        case .checksumMismatch(let version, let name):
            return "migration \(version) (\(name)) was changed after it was applied; migrations are forward-only, "
                + "add a new one instead"
        case .databaseIsNewer(let databaseVersion, let knownVersion):
            return "the database schema is at version \(databaseVersion), newer than this ora (\(knownVersion)); "
                + "run a newer ora-server"
        case .invalidSequence(let detail):
            return "invalid migration list: \(detail)"
        case .statementFailed(let version, let name, let reason):
            return "migration \(version) (\(name)) failed and was rolled back: \(reason)"
        case .databaseUnavailable(let reason):
            return "database unavailable: \(reason)"
        }
    }
}
