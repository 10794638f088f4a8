public import ORADirectory

/// Why `PolicyService` refused: applying, rolling back and explaining policy.
public enum PolicyError: ServiceError, Equatable {
    /// The policy set has mistakes, each with its position; nothing was changed.
    case invalidPolicySet(mistakes: [String])
    /// The policy set names directory entries that do not exist, each with its position and the names probably
    /// meant; nothing was changed.
    case unknownEntries(mistakes: [String])
    /// The active version is no longer the one the change was made against; says which is.
    case conflict(String)
    /// No stored version has this number; says which.
    case unknownVersion(String)
    /// No single person in the directory has this name.
    case unknownOperator(String)
    /// No computer object in the directory has this name.
    case unknownMachine(String)
    /// The directory could not answer.
    case directory(DirectoryError)
    /// The database could not be reached (the cause is in the server's log).
    case databaseUnavailable

    public var code: String {
        switch self {
        case .invalidPolicySet: "invalid_policy"
        case .unknownEntries: "unknown_directory_entries"
        case .conflict: "conflict"
        case .unknownVersion: "unknown_version"
        case .unknownOperator: "unknown_operator"
        case .unknownMachine: "unknown_machine"
        case .directory(let error): error.code
        case .databaseUnavailable: "database_unavailable"
        }
    }

    public var message: String {
        switch self {
        case .invalidPolicySet: "the policy set has mistakes; nothing was changed"
        case .unknownEntries(let mistakes):
            "the policy set names \(mistakes.count) entr\(mistakes.count == 1 ? "y" : "ies") the directory does not have; "
                + "nothing was changed (apply with --allow-unknown for entries created later)"
        case .conflict(let message), .unknownVersion(let message): message
        case .unknownOperator(let name): "no single person is named \(name)"
        case .unknownMachine(let name): "no computer object is named \(name)"
        case .directory(let error): error.message
        case .databaseUnavailable: CommonFailure.databaseUnavailable
        }
    }

    public var kind: ServiceErrorKind {
        switch self {
        case .invalidPolicySet, .unknownEntries: .invalidContent
        case .conflict: .conflict
        case .unknownVersion, .unknownOperator, .unknownMachine: .notFound
        case .directory(let error): error.kind
        case .databaseUnavailable: .unavailable
        }
    }

    public var mistakes: [String] {
        switch self {
        case .invalidPolicySet(let mistakes), .unknownEntries(let mistakes): mistakes
        default: []
        }
    }
}
