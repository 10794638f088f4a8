/// Why `AuditService` refused: reading, verifying and signing the audit log.
public enum AuditServiceError: ServiceError, Equatable {
    /// The server has no audit signing key, so it cannot sign checkpoints.
    case noSigningKey
    /// The database could not be reached (the cause is in the server's log).
    case databaseUnavailable

    public var code: String {
        switch self {
        case .noSigningKey: "no_signing_key"
        case .databaseUnavailable: "database_unavailable"
        }
    }

    public var message: String {
        switch self {
        case .noSigningKey:
            "this server has no audit signing key (audit.signing_key_file), so it cannot sign checkpoints"
        case .databaseUnavailable: CommonFailure.databaseUnavailable
        }
    }

    public var kind: ServiceErrorKind {
        switch self {
        case .noSigningKey: .conflict
        case .databaseUnavailable: .unavailable
        }
    }
}
