import Foundation
import ORACore
import ORAStore
import ORATestSupport
import PostgresNIO
import Testing

@Suite("Policy versions in PostgreSQL")
struct PolicyStoreTests {
    static let applied: @Sendable (Int64, Int64?) -> AuditEvent = { version, previous in
        AuditEvent(
            .policyApplied, time: AuditTimestamp(Date()), actor: .operator(dn: "uid=peter", account: "peter"),
            policy: .init(version: version),
            outcome: .success,
            details: ["version": .integer(version), "previous_version": previous.map { .integer($0) } ?? .null])
    }
    static let rolledBack: @Sendable (String, Int64?) -> AuditEvent = { hash, previous in
        AuditEvent(
            .policyRolledBack, time: AuditTimestamp(Date()), actor: .operator(dn: "uid=peter", account: "peter"),
            outcome: .success,
            details: ["content_hash": .string(hash), "previous_version": previous.map { .integer($0) } ?? .null])
    }

    let logger = TestDatabase.logger

    static func set(_ access: String) throws -> PolicySet {
        try PolicyParser.parse([
            PolicySet.File(
                name: "p.yaml",
                content: """
                    policies:
                      - name: helpdesk
                        helpers: {groups: ["cn=Helpdesk,ou=Groups,dc=corp,dc=example"]}
                        targets: {any: true}
                        allow: \(access)
                    """)
        ])
    }

    @Test("apply, apply again unchanged, apply a change, roll back; history and active version follow")
    func applyAndRollback() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = PolicyStore(client: client, logger: logger)
            #expect(try await store.active() == nil)

            let first = try await store.apply(
                try Self.set("view"), author: "uid=peter", comment: "first", base: .nothing, auditEvent: Self.applied)
            #expect(first == .applied(1))
            #expect(
                try await store.apply(
                    try Self.set("view"), author: "uid=peter", comment: "again", base: .version(1),
                    auditEvent: Self.applied)
                    == .unchanged(1))
            let second = try await store.apply(
                try Self.set("control"), author: "uid=peter", comment: "tier 2", base: .version(1),
                auditEvent: Self.applied)
            #expect(second == .applied(2))
            #expect(try await store.active()?.activation.version == 2)
            #expect(try await store.active()?.files == (try Self.set("control")).files)

            #expect(
                try await store.rollback(to: 2, actor: "uid=peter", comment: "same", auditEvent: Self.rolledBack)
                    == .alreadyActive)
            #expect(
                try await store.rollback(to: 1, actor: "uid=peter", comment: "too much", auditEvent: Self.rolledBack)
                    == .rolledBack)
            let active = try #require(try await store.active())
            #expect(active.activation.version == 1)
            #expect(active.activation.action == "rollback")
            #expect(active.activation.contentHash == (try Self.set("view")).contentHash)
            #expect(try await store.history().map(\.version) == [1, 2, 1])
            #expect(try await database.sql("SELECT count(*) FROM policy_versions") == "2")

            await #expect(throws: PolicyStore.ConflictError.unknownVersion(7)) {
                _ = try await store.rollback(to: 7, actor: "uid=peter", comment: nil, auditEvent: Self.rolledBack)
            }
        }
    }

    @Test("two administrators applying against the same version: one wins, the other gets a conflict")
    func concurrentApplies() async throws {
        try await TestDatabase.with { database, _ in
            let clients = (0..<2).map { _ in database.makeClient() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { await client.run() } }
                try await Migrator(client: clients[0], logger: logger).migrate()
                let stores = clients.map { PolicyStore(client: $0, logger: logger) }
                _ = try await stores[0].apply(
                    try Self.set("view"), author: "uid=a", comment: nil, base: .nothing, auditEvent: Self.applied)
                let outcomes = await withTaskGroup(of: Result<PolicyStore.ApplyOutcome, any Error>.self) { applies in
                    for (index, store) in stores.enumerated() {
                        applies.addTask {
                            do {
                                let set = try Self.set(index == 0 ? "control" : "view\n    description: other")
                                return .success(
                                    try await store.apply(
                                        set, author: "uid=\(index)", comment: nil, base: .version(1),
                                        auditEvent: Self.applied))
                            } catch {
                                return .failure(error)
                            }
                        }
                    }
                    var results: [Result<PolicyStore.ApplyOutcome, any Error>] = []
                    for await result in applies { results.append(result) }
                    return results
                }
                let applied = outcomes.filter { if case .success(.applied) = $0 { return true } else { return false } }
                let conflicts = outcomes.filter {
                    if case .failure(let error) = $0,
                        error as? PolicyStore.ConflictError == .activeVersionChanged(expected: 1, actual: 2)
                    {
                        return true
                    }
                    return false
                }
                #expect(applied.count == 1)
                #expect(conflicts.count == 1)
                #expect(try await database.sql("SELECT count(*) FROM policy_activations") == "2")
                group.cancelAll()
            }
        }
    }
}
