public import ORACore

/// A problem with the configuration file, worded for the administrator who has to fix it.
public enum ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case unreadableFile(path: String, reason: String)
    /// The file's content is wrong at a known place.
    case invalid(YAMLError)
    /// The audit journal (`audit.journal`) cannot be opened or read.
    case auditJournal(AuditJournalError)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            return "\(path): cannot read the configuration file: \(reason)"
        case .invalid(let error):
            return error.description
        case .auditJournal(let error):
            return "audit.journal: \(error.description)"
        }
    }
}
