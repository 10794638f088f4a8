public import Logging
public import PostgresNIO

/// Answers whether the database can be used right now, by opening a connection of its own and running a trivial
/// query. Unlike a query through the pool, it fails within the connect timeout and says why.
public struct DatabaseProbe: Sendable {
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger

    /// Creates a probe that connects with `configuration`.
    public init(configuration: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Connects, runs `SELECT 1`, and disconnects.
    /// - Throws: `DatabaseUnavailableError` saying why the database cannot be used.
    public func ping() async throws(DatabaseUnavailableError) {
        let place = "\(configuration.host ?? "unix socket"):\(configuration.port.map(String.init) ?? "")"
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            do {
                try await connection.query("SELECT 1", logger: logger)
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()
        } catch {
            throw DatabaseUnavailableError(place: place, reason: DatabaseErrorDescription.describe(error))
        }
    }
}

/// The database cannot be reached or used.
public struct DatabaseUnavailableError: Error, Sendable, CustomStringConvertible {
    /// `host:port` of the database.
    public var place: String
    /// Why, in one line without secrets.
    public var reason: String

    public var description: String { "database unavailable at \(place): \(reason)" }
}
