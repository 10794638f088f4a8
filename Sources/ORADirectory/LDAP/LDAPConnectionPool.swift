import Synchronization

/// Service-account connections kept open and reused across requests.
///
/// A connection is taken for one operation on a thread-pool thread and given back afterwards; at most `capacity`
/// idle connections are kept, extra ones are closed after use. A reused connection that finds the server gone
/// (it restarted, or a failover happened) is dropped and the operation is retried once on a fresh connection.
final class LDAPConnectionPool: Sendable {
    private let settings: DirectorySettings
    private let idle: Mutex<[ConnectionBox]> = Mutex([])

    init(settings: DirectorySettings) {
        self.settings = settings
    }

    /// Runs `body` with a connection bound as the service account. Call it on a thread-pool thread only.
    func withConnection<Result>(_ body: (LDAPConnection) throws(LDAPError) -> Result) throws(LDAPError) -> Result {
        if let reused = idle.withLock({ $0.popLast() }) {
            do {
                let result = try body(reused.connection)
                giveBack(reused)
                return result
            } catch let error where error.isServerGone {
                // Fall through to a fresh connection.
            }
        }
        let fresh = ConnectionBox(connection: try LDAPConnection.boundAsServiceAccount(settings))
        let result = try body(fresh.connection)
        giveBack(fresh)
        return result
    }

    private func giveBack(_ box: ConnectionBox) {
        let capacity = settings.poolSize
        idle.withLock { connections in
            if connections.count < capacity { connections.append(box) }
        }
    }
}

/// Carries a connection between threads; the pool hands each to one user at a time.
private final class ConnectionBox: @unchecked Sendable {
    let connection: LDAPConnection
    init(connection: LDAPConnection) { self.connection = connection }
}

extension LDAPError {
    /// The connection is no longer usable: the server closed it or cannot be reached.
    var isServerGone: Bool {
        if case .serverUnreachable = self { return true }
        return false
    }
}
