import Foundation
import Logging
import ORACore
import ORAStore
import ServiceLifecycle
import Synchronization

/// Passes the chat lines of the sessions this replica runs on to the other replicas' watchers, on the sessions
/// channel, without holding up the lines themselves: a line is queued here once it has been recorded and delivered
/// to the watchers of this replica and to the agent, and the queue is sent in order, as many lines as are waiting in
/// one statement, by one loop. A line that cannot be passed on (the database unavailable) is logged and dropped:
/// it is in the audit log, and the helper reading through another replica sees the chat so far from there.
final class ChatCopies: Service, Sendable {
    /// The most lines sent in one statement.
    static let largestBatch = 200

    private let store: ReplicaStore
    private let logger: Logger
    private let waiting = Mutex<[String]>([])
    private let wakeup = Wakeup()

    init(store: ReplicaStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Queues `message` of session `id` for the other replicas; never waits.
    func publish(_ message: ChatMessage, of id: UUID) {
        guard let payload = try? ReplicaChat(session: id, chat: message).encoded() else { return }
        waiting.withLock { $0.append(payload) }
        wakeup.signal()
    }

    /// Sends what is queued, in order, until graceful shutdown; then what is left.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.wakeup.wait(atMost: .seconds(60))
                await self.sendWaiting()
            }
        }
        await sendWaiting()
    }

    private func sendWaiting() async {
        while true {
            let batch = waiting.withLock { waiting -> [String] in
                let batch = Array(waiting.prefix(Self.largestBatch))
                waiting.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                try await store.notify(ReplicaStore.sessionsChannel, batch)
            } catch {
                logger.warning(
                    "could not pass chat lines on to other servers",
                    metadata: ["lines": "\(batch.count)", "error": "\(DatabaseErrorDescription.describe(error))"])
            }
        }
    }
}

/// A chat line as replicas pass it on, on the sessions channel: a JSON object, where a change is a bare id.
struct ReplicaChat: Codable, Sendable {
    var session: UUID
    var chat: ChatMessage

    func encoded() throws -> String {
        // Dates as numbers: exact to the fraction of a second, and read only by replicas.
        String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
    }

    static func decode(_ payload: String) -> ReplicaChat? {
        try? JSONDecoder().decode(ReplicaChat.self, from: Data(payload.utf8))
    }
}
