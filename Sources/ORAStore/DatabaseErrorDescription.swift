import PostgresNIO

/// Turns PostgresNIO's errors, which deliberately say little in their `description`, into one line a person can act
/// on, without including bound values or passwords.
public enum DatabaseErrorDescription {
    /// A one-line, secret-free description of `error`.
    public static func describe(_ error: any Error) -> String {
        if let transaction = error as? PostgresTransactionError {
            if let closureError = transaction.closureError { return describe(closureError) }
            if let beginError = transaction.beginError { return describe(beginError) }
            if let commitError = transaction.commitError { return describe(commitError) }
        }
        guard let error = error as? PSQLError else { return String(describing: error) }
        switch error.code {
        case .server:
            let message = error.serverInfo?[.message] ?? "the server reported an error"
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + state
        case .connectionError:
            if let underlying = error.underlying { return "cannot connect: \(underlying)" }
            return "cannot connect"
        case .serverClosedConnection, .uncleanShutdown:
            return "the database closed the connection"
        case .sslUnsupported:
            return "the database does not support TLS but the configuration requires it"
        case .poolClosed, .clientClosedConnection:
            return "the database client is shutting down"
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            return "authentication failed (\(error.code))"
        default:
            return "\(error.code)"
        }
    }
}
