import Foundation
import Logging
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
    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    @Test("events recorded while it shuts down: each is written once or refused as shutting down, and the chain holds")
    func gracefulShutdown() async throws {
        let services = try TestServices.fromEnvironment()
        let database = try services.createDatabase()
        defer { try? services.dropDatabase(database) }
        let configuration = PostgresClient.Configuration(
            host: services.postgresHost, port: services.postgresPort, username: services.postgresUser,
            password: services.postgresPassword, database: database, tls: .disable)
        let setup = PostgresClient(configuration: configuration, backgroundLogger: Self.logger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await setup.run() }
            _ = try await Migrator(client: setup, logger: Self.logger).migrate()
            group.cancelAll()
        }

        let writer = AuditWriter(configuration: configuration, logger: Self.logger)
        let serviceGroup = ServiceGroup(
            configuration: .init(services: [.init(service: writer)], logger: Self.logger))
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
            while tally.written.load(ordering: .relaxed) < 2_000 { try await Task.sleep(for: .milliseconds(5)) }
            await serviceGroup.triggerGracefulShutdown()
        }

        // Every caller ends refused, and only because the writer stopped taking events, not because a write failed.
        #expect(tally.refusals.withLock { $0.count } == 64)
        #expect(tally.refusals.withLock { Set($0) } == ["the server is shutting down"])
        let stored = try services.sql("SELECT count(*) FROM audit_events", database: database)
        #expect(Int(stored.trimmingCharacters(in: .whitespacesAndNewlines)) == tally.written.load(ordering: .relaxed))
        let reader = PostgresClient(configuration: configuration, backgroundLogger: Self.logger)
        let report = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await reader.run() }
            defer { group.cancelAll() }
            return try await AuditLog(client: reader, logger: Self.logger).verify()
        }
        #expect(report.intact)
        #expect(Int(report.verified) == tally.written.load(ordering: .relaxed))
    }

    /// What the callers saw.
    final class Tally: Sendable {
        let written = Atomic(0)
        let refusals = Mutex<[String]>([])
    }
}
