import Foundation
import Logging
import ORACore
import ORAStore
import ServiceLifecycle
import Synchronization

/// An action one replica asks of the replica that holds a machine's agent connection.
enum ReplicaCall: Codable, Sendable {
    /// Offer help (`OfferIntake.offer`); the identity comes without groups, the receiver resolves them itself.
    case offer(
        identity: OperatorService.Identity, machine: String, mode: AccessMode, ticket: String?, reason: String?,
        source: String)
    /// Ask the novice for control (`SessionBroker.requestControl`).
    case requestControl(session: UUID, identity: OperatorService.Identity, source: String)
    /// End a session (`SessionBroker.end`).
    case end(session: UUID, identity: OperatorService.Identity, source: String)
    /// Close the connection of a machine's agent (after a revocation).
    case disconnect(machine: String)
    /// A chat line from the session's helper (`SessionBroker.chat`).
    case chat(session: UUID, identity: OperatorService.Identity, text: String, source: String)
    /// Open an invitation of a machine held there (`InvitationDesk.open`); groups resolved by the receiver.
    case openInvitation(
        identity: OperatorService.Identity, invitation: SignedInvitation, mode: AccessMode, ticket: String?,
        reason: String?, source: String)
    /// The helper's sealed password proof for an invitation being opened there (`InvitationDesk.prove`).
    case proveInvitation(
        identity: OperatorService.Identity, session: UUID, proof: InvitationPassword.SealedProof, source: String)
    /// Forget these operators' sessions, ended on the calling replica (`OperatorService.forget`).
    case forgetLogins(sessions: [UUID])
    /// A viewer ticket for the session's screen, for its helper, whose viewer the calling replica carries there
    /// (`ScreenService.viewerTicket`); `source` is the helper's address.
    case screenTicket(session: UUID, identity: OperatorService.Identity, source: String)
}

/// The answer to a `ReplicaCall`.
enum ReplicaAnswer: Codable, Sendable {
    /// The session acted on; its state is in the `sessions` table, written before this answer.
    case session(UUID)
    /// The other replica refused, for this reason.
    case refused(ReplicaRefusal)
    case done
    /// The chat line as delivered.
    case chat(ChatMessage)
    /// An invitation opened: its session, and the machine's challenge or the session of the offer made.
    case opening(session: UUID, machine: String, challenge: InvitationPassword.Challenge?, offered: UUID?)
    /// A viewer ticket of the answering replica, and when it expires.
    case screenTicket(ticket: String, expiresAt: Date)

    /// The session's id, or the refusal the other replica gave.
    func session() throws(SessionError) -> UUID {
        switch self {
        case .session(let id): return id
        case .refused(let refusal): throw .refusedElsewhere(refusal)
        case .done, .chat, .opening, .screenTicket: throw .noSessionInAnswer
        }
    }

    /// The chat line delivered, or the refusal the other replica gave.
    func chatMessage() throws(SessionError) -> ChatMessage {
        switch self {
        case .chat(let message): return message
        case .refused(let refusal): throw .refusedElsewhere(refusal)
        case .session, .done, .opening, .screenTicket: throw .noSessionInAnswer
        }
    }
}

/// How the replicas of ora-server talk: calls and answers over PostgreSQL NOTIFY on a channel per replica, and an
/// announcement on `ora_sessions` whenever a session changes. No cluster protocol of its own: the database every
/// replica already depends on carries the messages.
final class ReplicaBus: Service, Sendable {
    typealias Handler = @Sendable (ReplicaCall) async -> ReplicaAnswer

    private struct Envelope: Codable {
        var id: UUID
        var replyTo: UUID?
        var call: ReplicaCall?
        var answer: ReplicaAnswer?

        enum CodingKeys: String, CodingKey {
            case id, call, answer
            case replyTo = "reply_to"
        }
    }

    private struct State {
        var pending: [UUID: CheckedContinuation<ReplicaAnswer?, Never>] = [:]
        /// What sends each call and gives up on it after the timeout; cancelled when the answer comes first.
        var senders: [UUID: Task<Void, Never>] = [:]
        var watchers: [UUID: [UUID: AsyncStream<SessionNotice>.Continuation]] = [:]
    }

    /// This replica's id, as in `server_instances`.
    let instance: UUID
    private let store: ReplicaStore
    /// What answers calls from other replicas.
    private let handler: Handler
    private let logger: Logger
    private let state = Mutex(State())
    /// Where the invitations of the helpdesk's queue that changed go, announced by any replica (this one too):
    /// to `InvitationQueue`.
    private let queueContinuation: AsyncStream<UUID>.Continuation
    /// The operators' sessions kept in memory, served only while this bus listens, and told of every change the
    /// database announces.
    private let logins: LoginCache?

    /// - Parameters:
    ///   - queueChanges: where announced changes of the helpdesk's queue go (`InvitationQueue.changes`).
    ///   - logins: the operators' sessions kept in memory, which may serve only while the bus hears every change.
    ///   - handler: what answers calls from other replicas (`SessionRouting.answer`).
    init(
        instance: UUID, store: ReplicaStore, logger: Logger, queueChanges: AsyncStream<UUID>.Continuation,
        logins: LoginCache? = nil, handler: @escaping Handler
    ) {
        self.logins = logins
        self.instance = instance
        self.store = store
        self.handler = handler
        self.logger = logger
        queueContinuation = queueChanges
        logins?.reachOthers { [weak self] ids, wait in await self?.forgetElsewhere(ids, within: wait) }
    }

    /// Has every other running replica forget the operators' sessions `ids`, and waits for each to say it has, for at
    /// most `wait`.
    func forgetElsewhere(_ ids: [UUID], within wait: Duration) async {
        let others: [UUID]
        do {
            others = try await store.runningInstances().filter { $0 != instance }
        } catch {
            logger.warning(
                "could not tell the other servers of an ended login; waiting until they stop trusting it",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            try? await Task.sleep(for: wait)
            return
        }
        // A notification holds 8,000 bytes: a hundred ids at a time.
        let batches = stride(from: 0, to: ids.count, by: 100).map { Array(ids[$0..<min($0 + 100, ids.count)]) }
        await withTaskGroup { group in
            for other in others {
                for batch in batches {
                    group.addTask {
                        do throws(SessionError) {
                            _ = try await self.call(.forgetLogins(sessions: batch), on: other, timeout: wait)
                        } catch {
                            self.logger.warning(
                                """
                                another server did not confirm in time that it forgot an ended login; \
                                what it may have kept of it has expired by now
                                """,
                                metadata: ["server.instance": "\(other)", "after": "\(wait)", "error": "\(error.code)"])
                        }
                    }
                }
            }
        }
    }

    /// Asks `instance` to do `call` and waits for its answer.
    /// - Throws: `SessionError.replicaDidNotAnswer` when the message cannot be sent or no answer comes within
    ///   `timeout`.
    func call(
        _ call: ReplicaCall, on instance: UUID, timeout: Duration = .seconds(10)
    ) async throws(SessionError)
        -> ReplicaAnswer
    {
        let id = UUID()
        let payload: String
        do {
            payload = try Self.encode(Envelope(id: id, replyTo: self.instance, call: call))
        } catch {
            throw .requestNotEncodable
        }
        guard payload.utf8.count < 8000 else {
            throw .tooLargeToPassOn
        }
        let answer = await withCheckedContinuation { continuation in
            state.withLock { $0.pending[id] = continuation }
            let sender = Task {
                do {
                    try await store.notify(ReplicaStore.channel(of: instance), payload)
                } catch {
                    // Answered while the notification was still being confirmed: it arrived.
                    if Task.isCancelled { return }
                    logger.error(
                        "could not send to another server",
                        metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
                    resume(id, with: nil)
                    return
                }
                try? await Task.sleep(for: timeout)
                resume(id, with: nil)
            }
            state.withLock { state in
                // Answered already (before the sender was even noted): nothing left for it to wait for.
                if state.pending[id] == nil { sender.cancel() } else { state.senders[id] = sender }
            }
        }
        guard let answer else {
            throw .replicaDidNotAnswer
        }
        return answer
    }

    /// Tells every replica that session `id` changed.
    func announce(_ id: UUID) async {
        do {
            try await store.notify(ReplicaStore.sessionsChannel, id.uuidString.lowercased())
        } catch {
            logger.warning(
                "could not announce a session change",
                metadata: ["session.id": "\(id)", "error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    /// How an announcement of a changed invitation of the helpdesk's queue starts, on the sessions channel.
    static let queuePrefix = "queue:"

    /// What a replica hears of a session that runs on another.
    enum SessionNotice: Sendable, Hashable {
        /// It changed: read its copy.
        case changed
        /// A chat line was delivered.
        case chat(ChatMessage)
    }

    /// A notice each time any replica announces that session `id` changed, or passes on one of its chat lines.
    func changes(of id: UUID) -> AsyncStream<SessionNotice> {
        // Changes need no more than one waiting (the copy read then is the latest); chat lines each need theirs.
        let (stream, continuation) = AsyncStream<SessionNotice>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let watcher = UUID()
        state.withLock { $0.watchers[id, default: [:]][watcher] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { $0.watchers[id]?[watcher] = nil }
        }
        return stream
    }

    /// Listens on this replica's channel and on `ora_sessions`, on one connection, until shutdown.
    func run() async throws {
        await keepRunning(logging: "listening to other servers failed; retrying", logger: logger) {
            try await self.store.withMessages(for: self.instance) { messages in
                // Listening on both channels from here: whatever changes from now on is heard.
                self.logins?.listening(true)
                defer { self.logins?.listening(false) }
                for try await message in messages {
                    switch message {
                    case .addressed(let payload): await self.received(payload)
                    case .sessionChanged(let payload): await self.sessionChanged(payload)
                    }
                }
            }
        }
        let (pending, senders) = state.withLock { state in
            defer { (state.pending, state.senders) = ([:], [:]) }
            return (state.pending.values, state.senders.values)
        }
        for sender in senders { sender.cancel() }
        for continuation in pending { continuation.resume(returning: nil) }
        queueContinuation.finish()
    }

    @Sendable private func received(_ payload: String) async {
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(payload.utf8)) else {
            logger.warning("ignored a message from another server that is not valid")
            return
        }
        if let answer = envelope.answer {
            resume(envelope.id, with: answer)
            return
        }
        guard let call = envelope.call, let replyTo = envelope.replyTo else { return }
        Task {
            let answer = await handler(call)
            do {
                try await store.notify(
                    ReplicaStore.channel(of: replyTo), Self.encode(Envelope(id: envelope.id, answer: answer)))
            } catch {
                logger.warning(
                    "could not answer another server",
                    metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            }
        }
    }

    @Sendable private func sessionChanged(_ payload: String) async {
        let (id, notice): (UUID, SessionNotice)
        if payload.hasPrefix(ReplicaStore.operatorSessionPrefix) {
            // An unreadable id: whichever it was, nothing kept may be trusted.
            let changed = UUID(uuidString: String(payload.dropFirst(ReplicaStore.operatorSessionPrefix.count)))
            if let changed { logins?.changed([changed]) } else { logins?.forgetAll() }
            return
        } else if payload.hasPrefix(Self.queuePrefix) {
            if let queued = UUID(uuidString: String(payload.dropFirst(Self.queuePrefix.count))) {
                queueContinuation.yield(queued)
            }
            return
        } else if let changed = UUID(uuidString: payload) {
            (id, notice) = (changed, .changed)
        } else if let chat = ReplicaChat.decode(payload) {
            (id, notice) = (chat.session, .chat(chat.chat))
        } else {
            return
        }
        let watchers = state.withLock { Array(($0.watchers[id] ?? [:]).values) }
        for watcher in watchers { watcher.yield(notice) }
    }

    private func resume(_ id: UUID, with answer: ReplicaAnswer?) {
        let (continuation, sender) = state.withLock {
            ($0.pending.removeValue(forKey: id), $0.senders.removeValue(forKey: id))
        }
        sender?.cancel()
        continuation?.resume(returning: answer)
    }

    private static func encode(_ envelope: Envelope) throws -> String {
        String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self)
    }
}
