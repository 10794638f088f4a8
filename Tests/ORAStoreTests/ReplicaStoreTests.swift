import Foundation
import ORACore
import ORAStore
import ORATestSupport
import PostgresNIO
import Testing

@Suite("What replicas share: agent connections and session copies")
struct ReplicaStoreTests {
    let logger = TestDatabase.logger

    /// Registers a replica whose last heartbeat was `age` ago.
    func replica(_ id: UUID, lastSeen age: String, in database: TestDatabase) async throws {
        _ = try await database.sql(
            """
            INSERT INTO server_instances (id, host, process_id, version, started_at, last_seen_at)
            VALUES ('\(id)', 'host', 1, 'test', now(), now() - interval '\(age)')
            """)
    }

    @Test("a machine counts as connected only to a running replica; a stale disconnection keeps a newer connection")
    func connections() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let machines = MachineStore(client: client, logger: logger)
            let store = ReplicaStore(client: client, logger: logger)
            for name in ["ws-0101", "ws-0102"] {
                try await machines.enroll(
                    MachineStoreTests.machine(name), with: try await MachineStoreTests.createToken(machines),
                    at: MachineStoreTests.now, auditEvent: MachineStoreTests.enrolled)
            }
            let (running, stopped) = (UUID(), UUID())
            try await replica(running, lastSeen: "5 seconds", in: database)
            try await replica(stopped, lastSeen: "2 minutes", in: database)
            try await store.recordConnection(of: "ws-0101", to: running, at: MachineStoreTests.now)
            try await store.recordConnection(of: "ws-0102", to: stopped, at: MachineStoreTests.now)
            #expect(try await store.connectedInstance(of: "ws-0101") == running)
            #expect(try await store.connectedInstance(of: "ws-0102") == nil)
            // The machine search says the same: online only while connected to a running replica.
            #expect(
                try await machines.machines(matching: .init(onlineOnly: true), limit: 10).map(\.name) == ["ws-0101"])
            #expect(try await machines.machines(matching: .init(), limit: 10).map(\.online) == [true, false])
            #expect(try await machines.countMachines(matching: .init(onlineOnly: true)) == 1)

            // The agent moved to another replica before the first one noticed it had gone.
            try await store.recordConnection(of: "ws-0102", to: running, at: MachineStoreTests.now)
            try await store.recordDisconnection(of: "ws-0102", from: stopped, at: MachineStoreTests.now)
            #expect(try await store.connectedInstance(of: "ws-0102") == running)
            try await store.recordDisconnection(of: "ws-0102", from: running, at: MachineStoreTests.now)
            #expect(try await store.connectedInstance(of: "ws-0102") == nil)
        }
    }

    @Test("an older revision never replaces a newer one, and an ended session stays ended")
    func revisions() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = ReplicaStore(client: client, logger: logger)
            let (id, replica) = (UUID(), UUID())
            func save(_ revision: Int, _ state: String, ended: Bool = false) async throws {
                try await store.saveSession(
                    id, machine: "ws-0101", helperDN: "uid=lena.wolf", instance: replica, revision: revision,
                    ended: ended, snapshot: #"{"state": "\#(state)"}"#)
            }
            try await save(2, "viewing")
            try await save(1, "awaiting_consent")
            #expect(try await store.session(id)?.snapshot == #"{"state": "viewing"}"#)
            try await save(3, "ended", ended: true)
            try await save(4, "viewing")
            let stored = try #require(try await store.session(id))
            #expect(stored.ended)
            #expect(stored.snapshot == #"{"state": "ended"}"#)
            #expect(!stored.instanceAlive, "no heartbeat was ever recorded for this replica")
        }
    }

    @Test("sessions of a stopped replica are ended once, with their audit record; those of running replicas never")
    func orphans() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = ReplicaStore(client: client, logger: logger)
            let (running, stopped) = (UUID(), UUID())
            try await replica(running, lastSeen: "1 second", in: database)
            try await replica(stopped, lastSeen: "10 minutes", in: database)
            let (kept, orphaned, finished, unreadable) = (UUID(), UUID(), UUID(), UUID())
            for (id, instance, ended) in [
                (kept, running, false), (orphaned, stopped, false), (finished, stopped, true),
                (unreadable, stopped, false),
            ] {
                try await store.saveSession(
                    id, machine: "ws-0101", helperDN: "uid=lena.wolf", instance: instance, revision: 1, ended: ended,
                    snapshot: #"{"state": "viewing"}"#)
            }
            let ending: @Sendable (ReplicaStore.StoredSession) -> (event: AuditEvent, snapshot: String)? = {
                guard $0.id != unreadable else { return nil }
                return (
                    AuditEvent(
                        .sessionEnded, time: AuditTimestamp(Date()), actor: .system("test"), session: $0.id,
                        outcome: .success),
                    #"{"state": "ended"}"#
                )
            }
            async let first = store.endOrphanedSessions(ending: ending)
            async let second = store.endOrphanedSessions(ending: ending)
            let ended = try await [first, second]
            #expect(ended.flatMap { $0 } == [orphaned])
            #expect(try await store.endOrphanedSessions(ending: ending).isEmpty)
            #expect(
                try await database.sql(
                    "SELECT string_agg(session_id::text, ',') FROM audit_events WHERE event = 'session.ended'")
                    == orphaned.uuidString.lowercased())
            let stored = try #require(try await store.session(orphaned))
            #expect(stored.ended && stored.snapshot == #"{"state": "ended"}"#)
            #expect(try await store.session(unreadable)?.ended == false, "left alone when no end could be made")
            let others = try await store.sessions(notOn: stopped, changedSince: .distantPast)
            #expect(others.map(\.id) == [kept])
            #expect(others.first?.instanceAlive == true)
        }
    }
}
