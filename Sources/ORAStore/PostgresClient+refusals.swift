import Logging
import PostgresNIO

extension PostgresClient {
    /// Runs `body` in a transaction. A `Refusal` that `body` throws (a conflict, an invalid token: something the
    /// caller answers with its own error) rolls the transaction back and is rethrown as itself, not wrapped in
    /// `PostgresTransactionError`.
    func withTransaction<Result: Sendable, Refusal: Error>(
        logger: Logger,
        passingThrough refusal: Refusal.Type,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> Result {
        do {
            return try await withTransaction(logger: logger, body)
        } catch let error as PostgresTransactionError {
            if let refused = error.closureError as? Refusal { throw refused }
            throw error
        }
    }
}
