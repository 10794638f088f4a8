import Foundation
import Logging
import ORACore
import ORAStore
import PostgresNIO
import Testing

@Suite("Operator sessions in PostgreSQL")
struct OperatorSessionStoreTests {
    let logger = TestDatabase.logger
    let person = Operator(
        dn: "uid=lena.wolf,ou=People,dc=corp,dc=example", account: "lena.wolf", displayName: "Lena Wolf",
        mail: "lena.wolf@corp.example")

    @Test("a session is found by its token until it expires or is revoked; only the hash is stored")
    func lifecycle() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = OperatorSessionStore(client: client, logger: logger)
            let token = OperatorToken.generate()
            try await store.createSession(
                token: token, for: person, userName: "lena.wolf", sourceAddress: "192.0.2.1",
                expiresAt: Date().addingTimeInterval(3600))
            #expect(try await store.session(for: token)?.person == person)
            #expect(try await store.session(for: OperatorToken.generate()) == nil)

            // What is stored is the token's SHA-256, not the token.
            #expect(
                try database.sql("SELECT encode(token_hash, 'hex') FROM operator_sessions")
                    == Hex.encode(token.hash))

            #expect(try await store.revoke(token, sourceAddress: "192.0.2.1"))
            #expect(try await store.session(for: token) == nil)
            #expect(try await store.revoke(token, sourceAddress: "192.0.2.1") == false)
            #expect(
                try database.sql("SELECT string_agg(outcome, ',' ORDER BY occurred_at, outcome DESC) FROM login_events")
                    == "success,logout")
        }
    }

    @Test("an expired session is not found")
    func expired() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = OperatorSessionStore(client: client, logger: logger)
            let token = OperatorToken.generate()
            try await store.createSession(
                token: token, for: person, userName: "lena.wolf", sourceAddress: nil,
                expiresAt: Date().addingTimeInterval(3600))
            _ = try database.sql("UPDATE operator_sessions SET expires_at = now() - interval '1 second'")
            #expect(try await store.session(for: token) == nil)
        }
    }

    @Test("hostile text is stored as data, verbatim")
    func hostileText() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = OperatorSessionStore(client: client, logger: logger)
            let hostile = "x'); DROP TABLE login_events; --\r\nforged line"
            try await store.recordAttempt(
                userName: hostile, outcome: .failure, reason: "invalid credentials", sourceAddress: "192.0.2.9")
            let rows = try await client.query("SELECT user_name, outcome FROM login_events", logger: logger)
            var found: [(String, String)] = []
            for try await row in rows.decode((String, String).self) { found.append(row) }
            #expect(found.count == 1)
            #expect(found.first?.0 == hostile)
            #expect(found.first?.1 == "failure")
        }
    }
}
