import Foundation
import ORACore
import ORAStore
import PostgresNIO
import Testing

@Suite("What replicas share: agent connections and session copies")
struct ReplicaStoreTests {
    let logger = TestDatabase.logger

    /// Registers a replica whose last heartbeat was `age` ago.
    func replica(_ id: UUID, lastSeen age: String, in database: TestDatabase) throws {
        _ = try database.sql(
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
                    MachineStoreTests.machine(name), with: try await MachineStoreTests().createToken(machines),
                    at: MachineStoreTests.now, auditEvent: MachineStoreTests.enrolled)
            }
            let (running, stopped) = (UUID(), UUID())
            try replica(running, lastSeen: "5 seconds", in: database)
            try replica(stopped, lastSeen: "2 minutes", in: database)
            try await store.recordConnection(of: "ws-0101", to: running, at: MachineStoreTests.now)
            try await store.recordConnection(of: "ws-0102", to: stopped, at: MachineStoreTests.now)
            #expect(try await store.connectedInstance(of: "ws-0101") == running)
            #expect(try await store.connectedInstance(of: "ws-0102") == nil)
            #expect(try await store.connectedMachines() == ["ws-0101"])

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

    @Test("sessions of a stopped replica are claimed once, by one caller; those of running replicas never")
    func orphans() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = ReplicaStore(client: client, logger: logger)
            let (running, stopped) = (UUID(), UUID())
            try replica(running, lastSeen: "1 second", in: database)
            try replica(stopped, lastSeen: "10 minutes", in: database)
            let (kept, orphaned, finished) = (UUID(), UUID(), UUID())
            for (id, instance, ended) in [
                (kept, running, false), (orphaned, stopped, false), (finished, stopped, true),
            ] {
                try await store.saveSession(
                    id, machine: "ws-0101", helperDN: "uid=lena.wolf", instance: instance, revision: 1, ended: ended,
                    snapshot: "{}")
            }
            async let first = store.claimOrphanedSessions()
            async let second = store.claimOrphanedSessions()
            let claims = try await [first, second]
            #expect(claims.flatMap { $0.map(\.id) } == [orphaned])
            #expect(try await store.claimOrphanedSessions().isEmpty)
            // Given back when its end could not be recorded: it is claimed again.
            try await store.release(orphaned)
            #expect(try await store.claimOrphanedSessions().map(\.id) == [orphaned])
            let others = try await store.sessions(notOn: stopped, changedSince: .distantPast)
            #expect(others.map(\.id) == [kept])
            #expect(others.first?.instanceAlive == true)
        }
    }
}
