import Foundation
import ORAStore
import Synchronization

/// The operators' sessions this replica looked up in the database in the last `lifetime`, so that a helper's steady
/// requests (a chat line a second in each of 16 sessions) are not each a query.
///
/// Revocation still ends a session at once, on every replica: the replica that ends one (logout, revocation, a failed
/// account check) forgets it and has every other running replica forget it before it answers (`ended`). The database
/// announces every change of a session too (trigger `operator_sessions_changed`, on the sessions channel the replicas
/// listen on), so one made by hand in SQL is forgotten as soon as the announcement arrives (milliseconds), and in any
/// case within `lifetime`. The cache serves only while this replica is listening (`listening`); when the listening
/// connection breaks, the database is down or unreachable, every entry is dropped and each request asks the database
/// again, which then refuses it (fail closed). A lookup that raced with an announcement is not kept (`generation`),
/// and an entry's lifetime runs from the moment its lookup started, so nothing read before a change outlives
/// `lifetime` after it.
final class LoginCache: Sendable {
    /// How long a session looked up is trusted without asking again; bounds, too, how long a replica that lost the
    /// database without noticing may serve a session revoked meanwhile.
    let lifetime: Duration

    private struct Entry {
        var session: OperatorSessionStore.Session
        var storedAt: ContinuousClock.Instant
    }

    private struct State {
        var entries: [[UInt8]: Entry] = [:]
        var listening = false
        /// Moves on with every announcement, and when listening starts or stops.
        var generation = 0
    }

    /// The most entries kept; past it, the stale ones are dropped, and a full cache takes no more.
    static let capacity = 100_000

    private let state = Mutex(State())
    /// What has the other running replicas forget sessions, waiting for their answers for at most the given time
    /// (`ReplicaBus.forgetElsewhere`); none on a lone replica, or before the bus is built.
    private let others = Mutex<(@Sendable ([UUID], Duration) async -> Void)?>(nil)

    init(lifetime: Duration = .seconds(2)) {
        self.lifetime = lifetime
    }

    /// The session of the token that hashes to `hash`, if it was looked up within `lifetime` and nothing was
    /// announced of it since.
    func session(for hash: [UInt8], at instant: ContinuousClock.Instant) -> OperatorSessionStore.Session? {
        state.withLock { state in
            guard state.listening, let entry = state.entries[hash] else { return nil }
            guard instant - entry.storedAt < lifetime else {
                state.entries[hash] = nil
                return nil
            }
            return entry.session
        }
    }

    /// What to pass to `keep` for a lookup that starts now; `nil` while nothing may be kept (not listening).
    var generation: Int? {
        state.withLock { $0.listening ? $0.generation : nil }
    }

    /// Keeps `session`, looked up by the token that hashes to `hash` in a lookup that started at `instant`, unless
    /// something was announced since (at `generation`).
    func keep(
        _ session: OperatorSessionStore.Session, for hash: [UInt8], lookedUpAt generation: Int,
        at instant: ContinuousClock.Instant
    ) {
        state.withLock { state in
            guard state.listening, state.generation == generation else { return }
            if state.entries.count >= Self.capacity {
                state.entries = state.entries.filter { instant - $0.value.storedAt < lifetime }
                guard state.entries.count < Self.capacity else { return }
            }
            state.entries[hash] = Entry(session: session, storedAt: instant)
        }
    }

    /// Sessions `ids` changed (revoked, expired, checked, removed): forgotten at once.
    func changed(_ ids: [UUID]) {
        let ids = Set(ids)
        state.withLock { state in
            state.generation += 1
            state.entries = state.entries.filter { !ids.contains($0.value.session.id) }
        }
    }

    /// Sessions `ids` were ended on this replica: forgotten here at once, and by every other running replica before
    /// this returns. A replica that does not answer within `lifetime` has by then dropped whatever it read before the
    /// end, as its entries' lifetime runs from the start of their lookup.
    func ended(_ ids: [UUID]) async {
        changed(ids)
        guard !ids.isEmpty, let forget = others.withLock({ $0 }) else { return }
        await forget(ids, lifetime)
    }

    /// Has `forget` tell the other replicas of every session ended here (`ended`).
    func reachOthers(through forget: @escaping @Sendable ([UUID], Duration) async -> Void) {
        others.withLock { $0 = forget }
    }

    /// This replica started (`true`) or stopped listening to the database's announcements; either way, everything
    /// kept is forgotten.
    func listening(_ listening: Bool) {
        state.withLock { state in
            state.listening = listening
            Self.forget(&state)
        }
    }

    /// Forgets every session kept, and any lookup under way: an announcement that names no session was heard.
    func forgetAll() {
        state.withLock { Self.forget(&$0) }
    }

    private static func forget(_ state: inout State) {
        state.generation += 1
        state.entries = [:]
    }
}
