import Foundation
import ORACore
import ORAServer
import ORAStore
import ORATestSupport
import PostgresNIO
import ServiceLifecycle
import Testing

/// The journal of ending events, against a real database: what a stopped server left is stored once, in order.
@Suite("The audit journal")
struct AuditJournalTests {
    static func event(_ number: Int) -> AuditEvent {
        AuditEvent(
            .sessionEnded, time: AuditTimestamp(Date()),
            actor: .operator(dn: "uid=lena.wolf,dc=example", account: "lena.wolf"), machine: "ws-0101",
            session: UUID(), outcome: .success,
            details: ["reason": "helper_ended", "number": .integer(Int64(number)), "flag": true, "none": nil])
    }

    @Test(
        "events left in the journal are stored once and in order at start, a line cut short by a crash is dropped, and the file is emptied"
    )
    func replay() async throws {
        try await TestDatabase.with { database, client in
            let logger = TestDatabase.logger
            try await Migrator(client: client, logger: logger).migrate()
            let files = try TemporaryDirectory()
            let events = (1...3).map(Self.event)
            let encoder = JSONEncoder()
            var lines = try events.map { "{\"event\":" + String(decoding: try encoder.encode($0), as: UTF8.self) + "}" }
            // The second one was stored before the server stopped, and so marked.
            lines.append("{\"stored\":\"\(events[1].id.uuidString)\"}")
            // The first one was stored too, but the server stopped before it marked it.
            try await client.withTransaction(logger: logger) { connection in
                try await AuditLog.append([events[0]], on: connection, logger: logger)
            }
            let path = try files.write("journal", lines.joined(separator: "\n") + "\n{\"event\":{\"id\":\"7")

            let writer = AuditWriter(endpoint: database.endpoint, logger: logger)
            let journal = try AuditJournal(
                writer: writer, log: AuditLog(client: client, logger: logger), path: path, logger: logger)
            #expect(journal.pendingCount == 2)
            let group = ServiceGroup(
                configuration: .init(services: [.init(service: writer), .init(service: journal)], logger: logger))
            try await withThrowingDiscardingTaskGroup { tasks in
                tasks.addTask { try await group.run() }
                #expect(await journal.waitUntilStored(events[2].id, atMost: .seconds(20)))
                await group.triggerGracefulShutdown()
            }
            #expect(
                try await database.sql("SELECT string_agg(details->>'number', ',' ORDER BY sequence) FROM audit_events")
                    == "1,3")
            #expect(try String(contentsOfFile: path, encoding: .utf8).isEmpty)
            #expect(try await AuditLog(client: client, logger: logger).verify().intact)
        }
    }

    @Test("a journal that is damaged in the middle is refused, naming the line")
    func damaged() async throws {
        try await TestDatabase.with { database, client in
            let logger = TestDatabase.logger
            let files = try TemporaryDirectory()
            let good = String(decoding: try JSONEncoder().encode(Self.event(1)), as: UTF8.self)
            let path = try files.write("journal", "{\"event\":\(good)}\nnot json\n{}\n")
            #expect {
                try AuditJournal(
                    writer: AuditWriter(endpoint: database.endpoint, logger: logger),
                    log: AuditLog(client: client, logger: logger), path: path, logger: logger)
            } throws: { error in
                "\(error)".contains("line 2 of the audit journal \(path) is not readable")
            }
        }
    }
}
