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
            let writer = AuditWriter(endpoint: database.endpoint, logger: logger)
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
                                        .offerRequested, time: AuditTimestamp(Date()),
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
            let stored = try await database.sql("SELECT count(*) FROM audit_events")
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
            _ = try await database.superuserSQL(
                """
                CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql
                    AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$;
                CREATE TRIGGER test_slow_insert BEFORE INSERT ON audit_events
                    FOR EACH STATEMENT EXECUTE FUNCTION test_slow_insert();
                """)
            let writer = AuditWriter(
                endpoint: database.endpoint, settings: .init(writeTimeout: .seconds(1), attempts: 2),
                logger: logger)
            let serviceGroup = ServiceGroup(configuration: .init(services: [.init(service: writer)], logger: logger))
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await serviceGroup.run() }
                var refusal: AuditUnavailableError?
                do throws(AuditUnavailableError) {
                    try await writer.record(
                        AuditEvent(
                            .operatorLogin, time: AuditTimestamp(Date()),
                            actor: .operator(dn: "uid=lena.wolf,dc=example", account: "lena.wolf"),
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
                        try await database.superuserSQL(
                            """
                            SELECT count(*) FROM pg_stat_activity
                            WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()
                            """) == "0"
                }
                #expect(quiet, "a statement of the refused write still runs after 30 seconds")
                #expect(try await database.sql("SELECT count(*) FROM audit_events") == "0", "refused, and yet stored")
                await serviceGroup.triggerGracefulShutdown()
            }
        }
    }

    @Test(
        "an event the database refuses fails alone: the events batched with it are stored, in a chain that holds; an oversized one is refused before it joins a batch"
    )
    func poisonedBatch() async throws {
        try await TestDatabase.with { database, client in
            let logger = TestDatabase.logger
            try await Migrator(client: client, logger: logger).migrate()
            // The database refuses any event whose actor is 'poison', as it would a value it cannot store.
            _ = try await database.superuserSQL(
                """
                CREATE FUNCTION test_refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.actor_id LIKE 'poison%' THEN
                        RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER test_refuse_poison BEFORE INSERT ON audit_events_default
                    FOR EACH ROW EXECUTE FUNCTION test_refuse_poison();
                """)
            for partition in try await database.sql(
                "SELECT string_agg(relname, ' ') FROM pg_class WHERE relname LIKE 'audit_events_2%' AND relkind = 'r'"
            ).split(separator: " ") {
                _ = try await database.superuserSQL(
                    "CREATE TRIGGER test_refuse_poison BEFORE INSERT ON \(partition) FOR EACH ROW EXECUTE FUNCTION test_refuse_poison()"
                )
            }
            let writer = AuditWriter(endpoint: database.endpoint, logger: logger)
            let serviceGroup = ServiceGroup(configuration: .init(services: [.init(service: writer)], logger: logger))
            let outcomes = Outcomes()
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await serviceGroup.run() }
                try await withThrowingDiscardingTaskGroup { callers in
                    // 300 callers at once, 5 of them poisoned, and one whose actor no index can hold.
                    for caller in 0..<300 {
                        callers.addTask {
                            let actor =
                                caller % 60 == 7
                                ? "poison-\(caller)"
                                : caller == 150
                                    ? String(repeating: "x", count: 20_000) : "uid=user-\(caller),dc=example"
                            let outcome: String
                            do throws(AuditUnavailableError) {
                                try await writer.record(
                                    AuditEvent(
                                        .operatorLoginFailed, time: AuditTimestamp(Date()),
                                        actor: AuditActor(kind: .operator, id: actor, name: nil),
                                        outcome: .failure))
                                outcome = "stored"
                            } catch {
                                outcome = error.refusedData ? "refused" : "unavailable: \(error.reason)"
                            }
                            outcomes.value.withLock { $0[String(actor.prefix(40))] = outcome }
                        }
                    }
                }
                await serviceGroup.triggerGracefulShutdown()
            }
            let all = outcomes.value.withLock { $0 }
            let refused = all.filter { $0.value == "refused" }.keys.sorted()
            #expect(
                refused == [
                    "poison-127", "poison-187", "poison-247", "poison-67", "poison-7",
                    String(repeating: "x", count: 40),
                ])
            #expect(all.filter { $0.value == "stored" }.count == 294, "\(all.filter { $0.value != "stored" })")
            #expect(try await database.sql("SELECT count(*) FROM audit_events") == "294")
            #expect(try await database.sql("SELECT count(*) FROM audit_events WHERE actor_id LIKE 'poison%'") == "0")
            let report = try await AuditLog(client: client, logger: logger).verify()
            #expect(report.intact)
            #expect(report.verified == 294)
        }
    }

    /// What each caller saw, by its actor.
    final class Outcomes: Sendable {
        let value = Mutex<[String: String]>([:])
    }

    /// What the callers saw.
    final class Tally: Sendable {
        let written = Atomic(0)
        let refusals = Mutex<[String]>([])
    }
}
