import Crypto
import Foundation
import Logging
import ORACore
import ORAStore
import ORATestSupport
import PostgresNIO
import Testing

@Suite("The audit log in PostgreSQL")
struct AuditLogTests {
    let logger = TestDatabase.logger

    static func event(
        _ type: AuditEventType = .offerRequested,
        account: String = "hannah.fischer",
        machine: String? = "WS-0101",
        session: UUID? = nil,
        outcome: AuditOutcome = .success,
        at time: AuditTimestamp = AuditTimestamp(Date()),
        details: [String: AuditValue] = [:]
    ) -> AuditEvent {
        AuditEvent(
            type, time: time, actor: .operator(dn: "uid=\(account),ou=People,dc=corp,dc=example", account: account),
            machine: machine, session: session, source: "192.0.2.7", policy: .init(version: 2, names: ["tier1"]),
            outcome: outcome, details: details)
    }

    func append(_ events: [AuditEvent], client: PostgresClient) async throws {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await AuditLog.append(events, on: connection, logger: logger)
        }
    }

    @Test("events come back exactly as written, hostile text included, and the chain verifies")
    func roundTrip() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let log = AuditLog(client: client, logger: logger)
            let hostile = "x'); DROP TABLE audit_events; --\r\nforged line \u{1b}[2J nul:\u{0} 日本"
            let events = [
                Self.event(account: hostile, machine: hostile, session: UUID(), details: ["text": .string(hostile)]),
                Self.event(.policyApplied, machine: nil, details: ["nested": ["list": [1, true, nil, "x"]]]),
                AuditEvent(.auditCheckpoint, time: AuditTimestamp(Date()), actor: .system("host:1"), outcome: .success),
                // Policy names travel as an array literal in the batch: every character it treats specially.
                AuditEvent(
                    .offerDenied, time: AuditTimestamp(Date()), actor: .system("host:1"), machine: "WS-0102",
                    policy: .init(
                        version: 7, names: [#"quo"te"#, #"back\slash"#, "com,ma", "{braces}", "", "NULL", hostile]),
                    outcome: .denied),
            ]
            try await append(events, client: client)
            let page = try await log.search(.init(), limit: 10)
            #expect(page.events.map(\.sequence) == [4, 3, 2, 1])
            #expect(page.events.reversed().map(\.event) == events)
            #expect(page.events.last?.event.machine?.contains("nul:\u{FFFD}") == true)
            let report = try await log.verify()
            #expect(report.intact)
            #expect(report.verified == 4)
            #expect(try await database.sql("SELECT to_regclass('audit_events') IS NOT NULL") == "t")
        }
    }

    @Test("appending the same events again stores nothing twice")
    func idempotent() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let events = (0..<5).map { _ in Self.event() }
            try await append(events, client: client)
            try await append(events + [Self.event()], client: client)
            try await append(Array(events.prefix(2)), client: client)
            #expect(try await database.sql("SELECT count(*), max(sequence) FROM audit_events") == "6|6")
            #expect(try await AuditLog(client: client, logger: logger).verify().intact)
        }
    }

    @Test("a first attempt without the look-up fails whole on a stored event; the checking retry stores the rest")
    func fastPathRetry() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let stored = Self.event()
            try await append([stored], client: client)
            let batch = [Self.event(), stored, Self.event()].map(AuditLog.PreparedEvent.init)
            await #expect(throws: (any Error).self) {
                try await client.withTransaction(logger: logger) { connection in
                    _ = try await AuditLog.append(batch, on: connection, logger: logger, checkingForStored: false)
                }
            }
            #expect(try await database.sql("SELECT count(*), max(sequence) FROM audit_events") == "1|1")
            #expect(try await database.sql("SELECT sequence FROM audit_chain_head") == "1")
            try await client.withTransaction(logger: logger) { connection in
                _ = try await AuditLog.append(batch, on: connection, logger: logger, checkingForStored: true)
            }
            #expect(try await database.sql("SELECT count(*), max(sequence) FROM audit_events") == "3|3")
            #expect(try await AuditLog(client: client, logger: logger).verify().intact)
        }
    }

    @Test("one statement after a known head: writes all or nothing, and notices a head that moved")
    func appendAfterKnownHead() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let log = AuditLog(client: client, logger: logger)
            let first = (0..<3).map { _ in AuditLog.PreparedEvent(Self.event()) }
            let batch = AuditLog.ChainedBatch(first, after: try await log.head())
            #expect(try await AuditLog.appendBehind(batch, lockWait: .seconds(120), on: client, logger: logger))
            let head = batch.next
            #expect(head == (try await log.head()))
            #expect(head.sequence == 3)

            // Another writer moved the head: nothing is written against the old one.
            try await append([Self.event(.policyApplied)], client: client)
            let late = AuditLog.ChainedBatch([AuditLog.PreparedEvent(Self.event())], after: head)
            #expect(try await AuditLog.appendBehind(late, lockWait: .seconds(120), on: client, logger: logger) == false)
            #expect(try await database.sql("SELECT count(*), max(sequence) FROM audit_events") == "4|4")

            // A stored id refuses the whole statement, head included.
            let current = try await log.head()
            let repeated = AuditLog.ChainedBatch(
                [Self.event(), first[1].chain.event, Self.event()].map(AuditLog.PreparedEvent.init), after: current)
            let refusal = await #expect(throws: PSQLError.self) {
                try await AuditLog.appendBehind(repeated, lockWait: .seconds(120), on: client, logger: logger)
            }
            #expect(refusal?.serverInfo?[.sqlState] == "23505", "a unique violation, not another failure")
            #expect(try await log.head() == current)
            #expect(try await database.sql("SELECT count(*) FROM audit_events") == "4")
            #expect(try await log.verify().intact)
        }
    }

    @Test(
        "a batch behind another commits right after it, in order; behind one that failed, or stuck behind the lock, it writes nothing"
    )
    func appendBehind() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let log = AuditLog(client: client, logger: logger)
            let start = try await log.head()
            let ahead = AuditLog.ChainedBatch(
                (0..<200).map { _ in AuditLog.PreparedEvent(Self.event()) }, after: start)
            let behind = AuditLog.ChainedBatch(
                (0..<200).map { _ in AuditLog.PreparedEvent(Self.event(.policyApplied)) }, after: ahead.next)
            // Both on their way at once, on two connections: while another transaction holds the chain lock, each
            // inserts its rows and waits for the lock, the one ahead first.
            func waitingForTheLock() async throws -> String {
                try await database.sql(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        + "WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted")
            }
            func waitUntilWaiting(_ count: String) async throws {
                for _ in 0..<600 {
                    if try await waitingForTheLock() == count { return }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let (first, second) = try await client.withTransaction(logger: logger) { holder in
                try await holder.query("SELECT pg_advisory_xact_lock(\(Int64(0x6f72_615f_6175_6474)))", logger: logger)
                let first = Task {
                    try await AuditLog.appendBehind(ahead, lockWait: .seconds(120), on: client, logger: logger)
                }
                try await waitUntilWaiting("1")
                let second = Task {
                    try await AuditLog.appendBehind(behind, lockWait: .seconds(120), on: client, logger: logger)
                }
                try await waitUntilWaiting("2")
                await #expect(try waitingForTheLock() == "2")
                return (first, second)
            }
            #expect(try await (first.value, second.value) == (true, true))
            #expect(try await log.head() == behind.next)
            #expect(
                try await database.sql(
                    "SELECT count(*), min(sequence), max(sequence), count(DISTINCT event) FROM audit_events")
                    == "400|1|400|2")
            #expect(
                try await database.sql("SELECT max(sequence) FROM audit_events WHERE event = 'offer.requested'")
                    == "200",
                "the batch ahead is first in the chain")

            // Behind a batch that never came (chained after a head that is not stored): nothing is written.
            let lost = AuditLog.ChainedBatch([AuditLog.PreparedEvent(Self.event())], after: start)
            let stray = AuditLog.ChainedBatch([AuditLog.PreparedEvent(Self.event())], after: lost.next)
            #expect(
                try await AuditLog.appendBehind(stray, lockWait: .seconds(120), on: client, logger: logger) == false)
            #expect(try await AuditLog.appendBehind(lost, lockWait: .seconds(120), on: client, logger: logger) == false)
            #expect(try await database.sql("SELECT count(*) FROM audit_events") == "400")
            #expect(try await log.head() == behind.next)

            // A lock that is not released refuses the batch after its wait, and nothing is written.
            try await client.withTransaction(logger: logger) { holder in
                try await holder.query("SELECT pg_advisory_xact_lock(\(Int64(0x6f72_615f_6175_6474)))", logger: logger)
                let stuck = AuditLog.ChainedBatch([AuditLog.PreparedEvent(Self.event())], after: behind.next)
                let refusal = await #expect(throws: PSQLError.self) {
                    try await AuditLog.appendBehind(stuck, lockWait: .milliseconds(300), on: client, logger: logger)
                }
                #expect(refusal?.serverInfo?[.sqlState] == "55P03", "lock_not_available")
            }
            #expect(try await database.sql("SELECT count(*) FROM audit_events") == "400")

            // The server's role may call it; the chain verifies.
            #expect(
                try await database.sql(
                    "SELECT has_function_privilege('ora_server', 'ora_audit_append(text, bigint, bytea, bigint, bytea, "
                        + "bigint[], uuid[], text[], text[], text[], text[], text[], text[], text[], text[], text[], "
                        + "bigint[], text[], text[], text[], integer[], bytea[], bytea[])', 'EXECUTE')") == "t")
            #expect(try await log.verify().intact)
        }
    }

    @Test("the server role may only insert and read; nobody can update, delete or truncate")
    func appendOnly() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            try await append([Self.event(), Self.event()], client: client)
            for statement in [
                "UPDATE audit_events SET machine = 'X'", "DELETE FROM audit_events", "TRUNCATE audit_events",
                "TRUNCATE audit_events_default",
            ] {
                // As the server's role: no privilege at all.
                await #expect(throws: (any Error).self, "\(statement)") {
                    try await database.superuserSQL("SET ROLE ora_server; \(statement)")
                }
                // As the owner: the trigger refuses.
                do {
                    _ = try await database.sql(statement)
                    Issue.record("the owner could run \(statement)")
                } catch {
                    #expect("\(error)".contains("append-only") || "\(error)".contains("permission denied"), "\(error)")
                }
            }
            let month = try await database.sql("SELECT tableoid::regclass FROM audit_events LIMIT 1")
            #expect(month.hasPrefix("audit_events_20"))
            await #expect(throws: (any Error).self) { try await database.sql("DELETE FROM \(month)") }
            await #expect(throws: (any Error).self) { try await database.sql("TRUNCATE \(month)") }
            // The server role can insert and read.
            #expect(
                try await database.superuserSQL("SET ROLE ora_server; SELECT count(*) FROM audit_events") == "2")
            #expect(try await database.sql("SELECT count(*) FROM audit_events") == "2")
        }
    }

    /// Runs `statement` as a superuser with triggers off: what someone with full control of the database can do.
    func tamper(_ database: TestDatabase, _ statement: String) async throws {
        _ = try await database.superuserSQL("SET session_replication_role = replica; \(statement)")
    }

    @Test("an edited, deleted or reordered event, or a cut-off end, is found and named")
    func tampering() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let log = AuditLog(client: client, logger: logger)
            let events = (0..<10).map { _ in Self.event() }
            try await append(events, client: client)
            #expect(try await log.verify().intact)

            try await tamper(database, "UPDATE audit_events SET machine = 'SRV-DB01' WHERE sequence = 4")
            var report = try await log.verify()
            #expect(!report.intact)
            #expect(report.problem?.kind == .hashMismatch)
            #expect(report.problem?.sequence == 4)
            #expect(report.problem?.eventID == events[3].id)
            #expect(report.verified == 3)
            try await tamper(database, "UPDATE audit_events SET machine = 'WS-0101' WHERE sequence = 4")
            #expect(try await log.verify().intact)

            try await tamper(database, "UPDATE audit_events SET details = '{\"mode\": \"control\"}' WHERE sequence = 2")
            #expect(try await log.verify().problem?.sequence == 2)
            try await tamper(database, "UPDATE audit_events SET details = '{}' WHERE sequence = 2")
            #expect(try await log.verify().intact)

            try await tamper(
                database,
                "UPDATE audit_events SET sequence = CASE sequence WHEN 6 THEN 7 ELSE 6 END WHERE sequence IN (6, 7)")
            report = try await log.verify()
            #expect(report.problem?.sequence == 6)
            #expect(report.problem?.eventID == events[6].id)
            try await tamper(
                database,
                "UPDATE audit_events SET sequence = CASE sequence WHEN 6 THEN 7 ELSE 6 END WHERE sequence IN (6, 7)")
            #expect(try await log.verify().intact)

            try await tamper(database, "DELETE FROM audit_events WHERE sequence = 5")
            report = try await log.verify()
            #expect(report.problem?.kind == .missingEvents)
            #expect(report.problem?.sequence == 5)
            #expect(report.problem?.detail.contains("events 5–5 are missing") == true)

            try await TestDatabase.with { second, secondClient in
                try await Migrator(client: secondClient, logger: logger).migrate()
                try await append((0..<3).map { _ in Self.event() }, client: secondClient)
                try await tamper(second, "DELETE FROM audit_events WHERE sequence = 3")
                let cut = try await AuditLog(client: secondClient, logger: logger).verify()
                #expect(cut.problem?.kind == .truncated)
                #expect(
                    cut.problem?.detail.contains("recorded head is event 3, but the last stored event is 2") == true)
            }
        }
    }

    @Test("concurrent writers on separate connections extend one chain")
    func concurrentWriters() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let other = database.makeClient()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await other.run() }
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for writer in 0..<8 {
                        let target = writer.isMultiple(of: 2) ? client : other
                        writers.addTask {
                            for _ in 0..<25 {
                                try await append([Self.event(), Self.event()], client: target)
                            }
                        }
                    }
                    try await writers.waitForAll()
                }
                group.cancelAll()
            }
            let report = try await AuditLog(client: client, logger: logger).verify()
            #expect(report.intact)
            #expect(report.verified == 400)
            #expect(
                try await database.sql("SELECT count(DISTINCT sequence), max(sequence) FROM audit_events") == "400|400")
        }
    }

    @Test("signed checkpoints are stored, recorded in the chain, and checked by verify")
    func checkpoints() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let log = AuditLog(client: client, logger: logger)
            try await append((0..<4).map { _ in Self.event() }, client: client)
            let key = Curve25519.Signing.PrivateKey()
            let checkpoint = try await log.checkpoint(signingWith: key, actor: .system("host:1"))
            #expect(checkpoint.sequence == 4)
            #expect(checkpoint.hasValidSignature)
            let trusted: Set = [key.publicKey.rawRepresentation.base64EncodedString()]
            var report = try await log.verify(trustedKeys: trusted)
            #expect(report.intact)
            #expect(report.checkpoints == 1)
            #expect(report.verified == 5)
            #expect(
                try await database.sql("SELECT event, details->>'sequence' FROM audit_events WHERE sequence = 5")
                    == "audit.checkpoint|4")

            // Another key's checkpoints are not trusted.
            report = try await log.verify(trustedKeys: [
                Curve25519.Signing.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
            ])
            #expect(report.problem?.kind == .checkpointMismatch)

            // Rewriting the whole chain after an edit (as someone with the database, but without the key) is caught
            // by the checkpoint: recompute every hash from event 2 on.
            try await tamper(
                database,
                "DELETE FROM audit_events; UPDATE audit_chain_head SET sequence = 0, hash = decode(repeat('00', 32), 'hex')"
            )
            try await append((0..<5).map { _ in Self.event() }, client: client)
            report = try await log.verify(trustedKeys: trusted)
            #expect(report.problem?.kind == .checkpointMismatch)
            #expect(report.problem?.sequence == 4)
        }
    }

    @Test("search filters and keyset pages are exact over 100,000 events")
    func search() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let log = AuditLog(client: client, logger: logger)
            let start = AuditTimestamp(microseconds: 1_795_300_000_000_000)
            let accounts = ["hannah.fischer", "lena.wolf", "omar.haddad", "Peter.Schmidt"]
            let types: [AuditEventType] = [
                .offerRequested, .offerDenied, .consentGranted, .sessionEnded, .operatorLogin,
            ]
            let sessions = (0..<50).map { _ in UUID() }
            var all: [AuditEvent] = []
            for index in 0..<100_000 {
                all.append(
                    Self.event(
                        types[index % 5], account: accounts[index % 4], machine: "WS-\(index % 97)",
                        session: index % 7 == 0 ? sessions[index % 50] : nil,
                        outcome: index % 3 == 0 ? .denied : .success,
                        at: AuditTimestamp(microseconds: start.microseconds + Int64(index) * 60_000_000),
                        details: ["ticket": .string("INC\(index % 1000)")]))
            }
            for batch in stride(from: 0, to: all.count, by: 5_000) {
                try await append(Array(all[batch..<min(batch + 5_000, all.count)]), client: client)
            }
            func sequences(_ filter: AuditLog.Filter, page: Int = 1_000) async throws -> [Int64] {
                var result: [Int64] = []
                var before: Int64?
                repeat {
                    let found = try await log.search(filter, before: before, limit: page)
                    result += found.events.map(\.sequence)
                    before = found.next
                } while before != nil
                return result
            }
            func expected(_ include: (Int, AuditEvent) -> Bool) -> [Int64] {
                all.enumerated().filter { include($0.offset, $0.element) }.map { Int64($0.offset + 1) }.reversed()
            }
            let day = AuditTimestamp(microseconds: start.microseconds + 86_400_000_000)
            let nextDay = AuditTimestamp(microseconds: day.microseconds + 86_400_000_000)
            #expect(
                try await sequences(.init(since: day, until: nextDay, operatorName: "peter.schmidt"), page: 37)
                    == expected { $1.actor.name == "Peter.Schmidt" && $1.time >= day && $1.time < nextDay })
            #expect(
                try await sequences(.init(event: "offer.*", machine: "ws-5", outcome: .denied))
                    == expected { $1.name.hasPrefix("offer.") && $1.machine == "WS-5" && $1.outcome == .denied })
            #expect(
                try await sequences(.init(code: "ORA2201", session: sessions[3]))
                    == expected { $1.code == "ORA2201" && $1.session == sessions[3] })
            #expect(
                try await sequences(.init(operatorName: "uid=lena.wolf,ou=People,dc=corp,dc=example", text: "inc99\""))
                    == expected { _, _ in false })
            #expect(
                try await sequences(.init(event: "consent.granted", text: "INC99"), page: 500)
                    == expected {
                        $1.name == "consent.granted" && $1.details["ticket"]?.stringValue?.contains("INC99") == true
                    })
            // LIKE wildcards in the text are literal.
            #expect(try await sequences(.init(text: "INC_9")) == [])
            let first = try await log.search(.init(), limit: 3)
            #expect(first.events.map(\.sequence) == [100_000, 99_999, 99_998])
            #expect(first.next == 99_998)
            #expect(try await log.search(.init(), before: 2, limit: 3).events.map(\.sequence) == [1])
            #expect(try await log.search(.init(), before: 2, limit: 3).next == nil)
            // Events spread over the month partitions they fall into.
            #expect(
                Int(
                    try await database.sql(
                        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass"))
                    ?? 0 >= 3)
        }
    }

    @Test("retention detaches old months in order, records it, and verification continues after them")
    func retention() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            _ = try await database.sql(
                "SELECT ora_audit_prepare_partition('2026-01-01'), ora_audit_prepare_partition('2026-02-01')")
            func at(_ text: String) -> AuditTimestamp {
                AuditTimestamp(ISO8601DateFormatter().date(from: text)!)
            }
            try await append(
                [
                    Self.event(at: at("2026-01-05T10:00:00Z")), Self.event(at: at("2026-01-31T23:59:59Z")),
                    Self.event(at: at("2026-02-01T00:00:00Z")), Self.event(at: at("2026-02-20T08:00:00Z")),
                    Self.event(), Self.event(),
                ], client: client)
            let log = AuditLog(client: client, logger: logger)
            // The server's role may not detach.
            await #expect(throws: (any Error).self) {
                try await database.superuserSQL(
                    "SET ROLE ora_server; ALTER TABLE audit_events DETACH PARTITION audit_events_2026_01")
            }
            let detached = try await log.detachPartitions(
                endingBy: ISO8601DateFormatter().date(from: "2026-03-01T00:00:00Z")!, actor: .system("test"))
            #expect(detached.map(\.table) == ["audit_events_2026_01", "audit_events_2026_02"])
            #expect(detached.map(\.events) == [2, 2])
            #expect(detached.map(\.lastSequence) == [2, 4])
            #expect(
                try await database.sql(
                    "SELECT string_agg(details->>'partition', ',' ORDER BY sequence) FROM audit_events WHERE event = 'audit.partition_detached'"
                )
                    == "audit_events_2026_01,audit_events_2026_02")
            // The months are ordinary tables now, kept until someone archives and drops them.
            #expect(try await database.sql("SELECT count(*) FROM audit_events_2026_01") == "2")
            #expect(try await database.sql("SELECT min(sequence) FROM audit_events") == "5")
            let report = try await log.verify()
            #expect(report.intact, "\(String(describing: report.problem))")
            #expect(report.first == 5)
            #expect(report.verified == 4)
            // Nothing left that is old enough.
            #expect(
                try await log.detachPartitions(
                    endingBy: ISO8601DateFormatter().date(from: "2026-03-01T00:00:00Z")!, actor: .system("test")
                ).isEmpty)

            // Without the record, the missing start is reported.
            _ = try await database.superuserSQL(
                "SET session_replication_role = replica; DELETE FROM audit_events WHERE event = 'audit.partition_detached'"
            )
            let unexplained = try await log.verify()
            #expect(unexplained.problem?.kind == .missingEvents)
            #expect(unexplained.problem?.sequence == 1)
        }
    }
}
