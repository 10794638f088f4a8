import Logging
import PostgresNIO

/// A notification received on one of the channels a listener listens on.
public struct DatabaseNotification: Sendable, Hashable {
    /// The channel it came on.
    public var channel: String
    /// What the notifier sent with it.
    public var payload: String
}

/// The notifications of one listening connection, in the order they arrived; the sequence throws when the connection
/// breaks.
public typealias DatabaseNotifications = AsyncThrowingStream<DatabaseNotification, any Error>

/// The listening connection closed without an error.
public struct ListeningEndedError: Error, CustomStringConvertible {
    public var description: String { "the database connection that listened for notifications closed" }
}

extension PostgresClient {
    /// Listens on `channels`, all on one connection, and runs `body` with what arrives on any of them.
    ///
    /// Every channel is listened on before `body` starts, so anything changed after that point is announced to it.
    /// The sequence throws when the connection breaks; the listening stops when `body` returns.
    func listen<Result: Sendable>(
        to channels: [String],
        _ body: @Sendable (DatabaseNotifications) async throws -> Result
    ) async throws -> Result {
        try await withConnection { connection in
            try await Self.listen(on: connection, to: channels[...], listening: []) { sequences in
                let (notifications, continuation) = DatabaseNotifications.makeStream()
                return try await withThrowingTaskGroup(of: Void.self) { group in
                    for (channel, sequence) in sequences {
                        group.addTask {
                            do {
                                for try await notification in sequence {
                                    continuation.yield(
                                        DatabaseNotification(channel: channel, payload: notification.payload))
                                }
                                continuation.finish(throwing: ListeningEndedError())
                            } catch {
                                continuation.finish(throwing: error)
                            }
                        }
                    }
                    defer { group.cancelAll() }
                    return try await body(notifications)
                }
            }
        }
    }

    /// Listens on the first of `channels` and recurses for the rest, collecting each channel's sequence.
    private static func listen<Result: Sendable>(
        on connection: PostgresConnection,
        to channels: ArraySlice<String>,
        listening: [(String, PostgresNotificationSequence)],
        _ body: @Sendable ([(String, PostgresNotificationSequence)]) async throws -> Result
    ) async throws -> Result {
        guard let channel = channels.first else { return try await body(listening) }
        return try await connection.listen(on: channel) { sequence in
            try await listen(
                on: connection, to: channels.dropFirst(), listening: listening + [(channel, sequence)], body)
        }
    }
}
