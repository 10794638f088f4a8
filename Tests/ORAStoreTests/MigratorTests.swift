import Logging
import ORAStore
import ORATestSupport
import PostgresNIO
import Testing

@Suite("Schema migrations against PostgreSQL")
struct MigratorTests {
    let logger = TestDatabase.logger

    @Test("a fresh database gets every migration and the bookkeeping rows")
    func freshDatabase() async throws {
        try await TestDatabase.with { (database, client) async throws -> Void in
            let applied = try await Migrator(client: client, logger: logger).migrate()
            #expect(applied == Schema.migrations.map(\.version))
            let recorded = try await database.sql(
                "SELECT string_agg(version || ':' || checksum, ',' ORDER BY version) FROM schema_migrations")
            #expect(recorded == Schema.migrations.map { "\($0.version):\($0.checksum)" }.joined(separator: ","))
            #expect(try await database.sql("SELECT to_regclass('public.server_instances') IS NOT NULL") == "t")
        }
    }

    @Test("running again applies nothing and changes nothing")
    func idempotent() async throws {
        try await TestDatabase.with { (database, client) async throws -> Void in
            let migrator = Migrator(client: client, logger: logger)
            try await migrator.migrate()
            let before = try await database.sql(
                "SELECT string_agg(version || '@' || applied_at, ',') FROM schema_migrations")
            #expect(try await migrator.migrate() == [])
            #expect(try await migrator.migrate() == [])
            #expect(
                try await database.sql("SELECT string_agg(version || '@' || applied_at, ',') FROM schema_migrations")
                    == before)
        }
    }

    @Test("concurrent runs from separate clients apply each migration exactly once")
    func concurrentRuns() async throws {
        let migrations = (1...5).map { version in
            Migration(
                version: version,
                name: "step \(version)",
                statements: [
                    "CREATE TABLE step_\(version) (id integer PRIMARY KEY)",
                    // Give a competing run the chance to interleave if the lock did not hold.
                    "SELECT pg_sleep(0.05)",
                    "INSERT INTO step_\(version) VALUES (\(version))",
                ]
            )
        }
        try await TestDatabase.with { database, _ in
            let clients = (0..<4).map { _ in database.makeClient() }
            let results = try await withThrowingTaskGroup(of: [Int].self) { group in
                for client in clients {
                    group.addTask {
                        await client.run(); return []
                    }
                }
                var runs: [[Int]] = []
                try await withThrowingTaskGroup(of: [Int].self) { runners in
                    for client in clients {
                        runners.addTask {
                            try await Migrator(client: client, migrations: migrations, logger: logger).migrate()
                        }
                    }
                    for try await applied in runners { runs.append(applied) }
                }
                group.cancelAll()
                return runs
            }
            // Exactly one run applied everything; the others found the schema current.
            #expect(results.filter { $0 == [1, 2, 3, 4, 5] }.count == 1)
            #expect(results.filter(\.isEmpty).count == clients.count - 1)
            #expect(try await database.sql("SELECT count(*) FROM schema_migrations") == "5")
            for version in 1...5 {
                #expect(try await database.sql("SELECT count(*) FROM step_\(version)") == "1")
            }
        }
    }

    @Test("a failing migration is rolled back whole and reported with its name")
    func failingMigration() async throws {
        let migrations = [
            Migration(version: 1, name: "good", statements: ["CREATE TABLE good_table (id integer)"]),
            Migration(
                version: 2,
                name: "broken",
                statements: ["CREATE TABLE half_done (id integer)", "CREATE TABLE good_table (id integer)"]
            ),
        ]
        try await TestDatabase.with { (database, client) async throws -> Void in
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(client: client, migrations: migrations, logger: logger).migrate()
            }
            guard case .statementFailed(let version, let name, let reason) = error else {
                Issue.record("expected statementFailed, got \(String(describing: error))")
                return
            }
            #expect(version == 2)
            #expect(name == "broken")
            #expect(reason.contains("already exists"))
            #expect(try await database.sql("SELECT string_agg(version::text, ',') FROM schema_migrations") == "1")
            #expect(try await database.sql("SELECT to_regclass('public.half_done') IS NULL") == "t")
        }
    }

    @Test("an applied migration whose statements changed stops the run")
    func editedMigration() async throws {
        let original = [Migration(version: 1, name: "first", statements: ["CREATE TABLE first (id integer)"])]
        let edited = [Migration(version: 1, name: "first", statements: ["CREATE TABLE first (id bigint)"])]
        try await TestDatabase.with { _, client in
            try await Migrator(client: client, migrations: original, logger: logger).migrate()
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(client: client, migrations: edited, logger: logger).migrate()
            }
            #expect(error == .checksumMismatch(version: 1, name: "first"))
        }
    }

    @Test("a database migrated by a newer ora is refused")
    func newerDatabase() async throws {
        let older = [Migration(version: 1, name: "first", statements: ["CREATE TABLE first (id integer)"])]
        let newer = older + [Migration(version: 2, name: "second", statements: ["CREATE TABLE second (id integer)"])]
        try await TestDatabase.with { _, client in
            try await Migrator(client: client, migrations: newer, logger: logger).migrate()
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(client: client, migrations: older, logger: logger).migrate()
            }
            #expect(error == .databaseIsNewer(databaseVersion: 2, knownVersion: 1))
        }
    }

    @Test("a list with a gap is refused before the database is touched")
    func gapInSequence() async throws {
        let migrations = [
            Migration(version: 1, name: "first", statements: ["CREATE TABLE first (id integer)"]),
            Migration(version: 3, name: "third", statements: ["CREATE TABLE third (id integer)"]),
        ]
        try await TestDatabase.with { (database, client) async throws -> Void in
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(client: client, migrations: migrations, logger: logger).migrate()
            }
            #expect(error == .invalidSequence("expected version 2 at position 2, found 3"))
            #expect(try await database.sql("SELECT to_regclass('public.first') IS NULL") == "t")
        }
    }

    @Test("the shipped schema's versions are 1, 2, 3, … without gaps")
    func shippedSequence() {
        #expect(Schema.migrations.map(\.version) == Array(1...Schema.migrations.count))
        #expect(Set(Schema.migrations.map(\.checksum)).count == Schema.migrations.count)
    }
}
