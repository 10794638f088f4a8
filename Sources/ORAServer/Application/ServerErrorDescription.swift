import Foundation
import NIOCore
import ORADirectory
import ORAStore
import ServiceLifecycle

/// One line for any error that stops the server, safe to show: no stack trace, no secrets.
public enum ServerErrorDescription {
    /// Describes `error` for the administrator.
    public static func describe(_ error: any Error) -> String {
        switch error {
        case let error as ConfigurationError: return error.description
        case let error as MigrationError: return error.description
        case let error as LDAPError: return error.description
        case let error as DatabaseUnavailableError: return error.description
        case let error as StoppingLimitExceeded: return error.description
        case let error as IOError:
            return "cannot listen on the configured address (listen.host, listen.port): "
                + String(cString: strerror(error.errnoCode))
        default: return DatabaseErrorDescription.describe(error)
        }
    }
}
