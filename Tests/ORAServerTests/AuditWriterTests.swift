import Foundation
import ORACore
import ORAServer
import ORAStore
import ORATestSupport
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing

/// The audit writer as the server runs it: a service with connections of its own, stopped by graceful shutdown.
@Suite("The audit writer")
struct AuditWriterTests {
    @Test("events recorded while it shuts down: each is written once or refused as shutting down, and the chain holds")
    func gracefulShutdown() async throws {
        try await TestDatabase.with { database, client in
            let logger = TestDatabase.logger
            try await Migrator(client: client, logger: logger).migrate()
            let writer = AuditWriter(configuration: database.configuration, logger: logger)
            let serviceGroup = ServiceGroup(configuration: .init(services: [.init(service: writer)], logger: logger))
            let tally = Tally()
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await serviceGroup.run() }
                // Callers record without pause from before the shutdown until they are refused.
                for caller in 0..<64 {
                    group.addTask {
                        while true {
                            do throws(AuditUnavailableError) {
                                try await writer.record(
                                    AuditEvent(
                                        .offerRequested,
                                        actor: .operator(dn: "uid=user-\(caller),dc=example", account: nil),
                                        machine: "WS-\(caller)", outcome: .success))
                                tally.written.add(1, ordering: .relaxed)
                            } catch {
                                tally.refusals.withLock { $0.append(error.reason) }
                                return
                            }
                        }
                    }
                }
                // Until enough are written, or every caller was refused early (which the expectations below report).
                while tally.written.load(ordering: .relaxed) < 2_000, tally.refusals.withLock({ $0.count }) < 64 {
                    try await Task.sleep(for: .milliseconds(5))
                }
                await serviceGroup.triggerGracefulShutdown()
            }

            // Every caller ends refused, and only because the writer stopped taking events, not because a write
            // failed.
            let written = tally.written.load(ordering: .relaxed)
            #expect(tally.refusals.withLock { $0.count } == 64)
            #expect(tally.refusals.withLock { Set($0) } == ["the server is shutting down"])
            let stored = try database.sql("SELECT count(*) FROM audit_events")
            #expect(Int(stored.trimmingCharacters(in: .whitespacesAndNewlines)) == written)
            let report = try await AuditLog(client: client, logger: logger).verify()
            #expect(report.intact)
            #expect(Int(report.verified) == written)
        }
    }

    @Test(
        "a write that outlasts the write timeout is refused, and the database gives it up too: it is not stored later")
    func slowWriteNotStoredAfterRefusal() async throws {
        try await TestDatabase.with { database, client in
            let logger = TestDatabase.logger
            try await Migrator(client: client, logger: logger).migrate()
            // Every insert into the log takes 3 seconds, three times as long as the writer waits for one.
            _ = try database.superuserSQL(
                """
                CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql
                    AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$;
                CREATE TRIGGER test_slow_insert BEFORE INSERT ON audit_events
                    FOR EACH STATEMENT EXECUTE FUNCTION test_slow_insert();
                """)
            let writer = AuditWriter(
                configuration: database.configuration, settings: .init(writeTimeout: .seconds(1), attempts: 2),
                logger: logger)
            let serviceGroup = ServiceGroup(configuration: .init(services: [.init(service: writer)], logger: logger))
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await serviceGroup.run() }
                var refusal: AuditUnavailableError?
                do throws(AuditUnavailableError) {
                    try await writer.record(
                        AuditEvent(
                            .operatorLogin, actor: .operator(dn: "uid=lena.wolf,dc=example", account: "lena.wolf"),
                            outcome: .success))
                } catch {
                    refusal = error
                }
                #expect(refusal != nil, "the login must be refused: its event was not committed in time")
                // Until no statement of this database runs any more: one still running could commit after that, so
                // the count below means something only once it is quiet.
                var (quiet, looks) = (false, 0)
                while !quiet, looks < 300 {
                    if looks > 0 { try await Task.sleep(for: .milliseconds(100)) }
                    looks += 1
                    quiet =
                        try database.superuserSQL(
                            """
                            SELECT count(*) FROM pg_stat_activity
                            WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()
                            """) == "0"
                }
                #expect(quiet, "a statement of the refused write still runs after 30 seconds")
                #expect(try database.sql("SELECT count(*) FROM audit_events") == "0", "refused, and yet stored")
                await serviceGroup.triggerGracefulShutdown()
            }
        }
    }

    /// What the callers saw.
    final class Tally: Sendable {
        let written = Atomic(0)
        let refusals = Mutex<[String]>([])
    }
}
