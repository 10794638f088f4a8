import Foundation
import Logging
import ORAStore

/// The copy of each session's state that this replica writes for the others, and the announcement that it changed:
/// how any replica answers for a session that runs on another.
struct SessionCopies: Sendable {
    let store: ReplicaStore
    /// This replica's id, as in `server_instances`.
    let instance: UUID
    let logger: Logger

    /// Writes the session's state as of `revision` (an older revision never overwrites a newer one), then announces
    /// the change. A failure is logged: the session goes on, and other replicas see it as of the last copy.
    func publish(_ snapshot: SessionSnapshot, revision: Int) async {
        do {
            try await store.saveSession(
                snapshot.id, machine: snapshot.machine, helperDN: snapshot.helperDN, instance: instance,
                revision: revision, ended: snapshot.hasEnded, snapshot: SessionRouting.encode(snapshot))
        } catch {
            logger.warning(
                "could not share a session's state with other servers",
                metadata: ["session.id": "\(snapshot.id)", "error": "\(DatabaseErrorDescription.describe(error))"])
            return
        }
        do {
            try await store.notify(ReplicaStore.sessionsChannel, snapshot.id.uuidString.lowercased())
        } catch {
            logger.warning(
                "could not announce a session change",
                metadata: ["session.id": "\(snapshot.id)", "error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }
}
