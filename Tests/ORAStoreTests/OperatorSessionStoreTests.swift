import Foundation
import Logging
import ORACore
import ORAStore
import ORATestSupport
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
                token: token, for: person, sourceAddress: "192.0.2.1",
                expiresAt: Date().addingTimeInterval(3600))
            #expect(try await store.session(for: token)?.person == person)
            #expect(try await store.session(for: OperatorToken.generate()) == nil)

            // What is stored is the token's SHA-256, not the token.
            #expect(
                try await database.sql("SELECT encode(token_hash, 'hex') FROM operator_sessions")
                    == Hex.encode(token.hash))

            #expect(try await store.revoke(token))
            #expect(try await store.session(for: token) == nil)
            #expect(try await store.revoke(token) == false)
        }
    }

    @Test("an expired session is not found")
    func expired() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = OperatorSessionStore(client: client, logger: logger)
            let token = OperatorToken.generate()
            try await store.createSession(
                token: token, for: person, sourceAddress: nil,
                expiresAt: Date().addingTimeInterval(3600))
            _ = try await database.sql("UPDATE operator_sessions SET expires_at = now() - interval '1 second'")
            #expect(try await store.session(for: token) == nil)
        }
    }
}
