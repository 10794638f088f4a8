public import Logging
public import NIOCore
public import ORACore
public import PostgresNIO

/// The audit writer's own connections to the database, apart from the pool the rest of the server shares: a few
/// (as many as batches may be on their way, and one more), on an event loop the writer chooses, and with a statement
/// timeout equal to the writer's, so the database gives up on a statement when the writer does. Cancelling a query
/// leaves it running, and a batch appended in one statement commits by itself: without the timeout, a slow batch
/// whose callers were refused could still be stored after they had been told it was not.
public final class AuditWriterConnections: Sendable {
    private let client: PostgresClient
    private let logger: Logger

    /// Creates the connections to `endpoint`'s database, opened when `run` runs.
    /// - Parameters:
    ///   - connections: the most connections open at once.
    ///   - statementTimeout: how long any one statement may take.
    ///   - eventLoopGroup: where the connections run.
    public init(
        endpoint: DatabaseEndpoint,
        connections: Int,
        statementTimeout: Duration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        var configuration = endpoint.client
        configuration.options.maximumConnections = connections
        configuration.options.minimumConnections = 0
        configuration.options.additionalStartupParameters.append(
            ("statement_timeout", AuditLog.timeoutSetting(statementTimeout)))
        client = PostgresClient(configuration: configuration, eventLoopGroup: eventLoopGroup, backgroundLogger: logger)
        self.logger = logger
    }

    /// Keeps the connections until cancelled.
    public func run() async {
        await client.run()
    }

    /// The newest event's sequence and hash.
    public func head() async throws -> AuditChainHead {
        try await AuditLog(client: client, logger: logger).head()
    }

    /// `AuditLog.appendBehind` on these connections.
    public func appendBehind(_ batch: AuditLog.ChainedBatch, lockWait: Duration) async throws -> Bool {
        try await AuditLog.appendBehind(batch, lockWait: lockWait, on: client, logger: logger)
    }

    /// `AuditLog.append` in a transaction of its own on these connections.
    public func append(
        _ events: [AuditLog.PreparedEvent], checkingForStored: Bool, lockWait: Duration
    ) async throws {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await AuditLog.append(
                events, on: connection, logger: logger, checkingForStored: checkingForStored, lockWait: lockWait)
        }
    }
}
