import Foundation
import ORATestSupport
import Testing

/// Each replica keeps the operators' sessions it looked up for a moment; a session ended on any replica must still stop
/// working on every replica at the very next request, and one ended in the database by hand as soon as the database's
/// announcement arrives.
@Suite("Logins across replicas")
struct LoginAcrossReplicasTests {
    @Test("a login ended on one replica is refused by every replica at its next request; one ended in SQL, at once too")
    func endedEverywhere() async throws {
        let first = try await RunningServer(extra: OperatorLoginTests.configuration)
        let second = try await RunningServer(sharing: first, extra: OperatorLoginTests.configuration)
        let replicas = [first, second]
        /// The answer of each replica to `token` asking who it is, twice in a row (the second from memory).
        func answers(_ token: String) async throws -> [UInt] {
            var statuses: [UInt] = []
            for server in replicas {
                for _ in 0..<2 { statuses.append(try await HTTP.get(server.base + "/api/v1/me", token: token).status) }
            }
            return statuses
        }

        // Logged out on the first replica.
        let lena = try await first.token("lena.wolf")
        #expect(try await answers(lena) == [200, 200, 200, 200])
        #expect(try await HTTP.post(first.base + "/api/v1/logout", token: lena).status == 204)
        #expect(try await answers(lena) == [401, 401, 401, 401])

        // Revoked by an administrator on the second replica.
        let tom = try await first.token("tom.berger")
        #expect(try await answers(tom) == [200, 200, 200, 200])
        let id = try await first.sql("SELECT id FROM operator_sessions WHERE account = 'tom.berger'")
        let peter = try await second.token("peter.schmidt")
        let revoked = try await HTTP.post(
            second.base + "/api/v1/operators/sessions/\(id)/revoke", json: #"{"reason": "INC0012345"}"#,
            token: peter)
        #expect(revoked.status == 200, "\(revoked.body)")
        #expect(try await answers(tom) == [401, 401, 401, 401])

        // Expired, and due for a check of its account, in the database itself, with no replica involved: each replica
        // hears the database's announcement and asks again, long before what it kept would have gone stale. One
        // replica at a time, so that the time measured holds only that replica's own lookups.
        let locked = "dn: uid=sara.klein,ou=People,dc=corp,dc=example\nchangetype: modify\n"
        for server in replicas {
            let hannah = try await server.token("hannah.fischer")
            let sara = try await server.token("sara.klein")
            try await first.directory.modify(
                locked + "add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
            /// This replica's answers to both, twice each (the second from memory).
            func kept() async throws -> [UInt] {
                var statuses: [UInt] = []
                for token in [hannah, sara] {
                    for _ in 0..<2 {
                        statuses.append(try await HTTP.get(server.base + "/api/v1/me", token: token).status)
                    }
                }
                return statuses
            }
            let lookedUp = ContinuousClock.now
            #expect(try await kept() == [200, 200, 200, 200])
            _ = try await first.sql(
                """
                UPDATE operator_sessions SET expires_at = now() - interval '1 second'
                WHERE account = 'hannah.fischer' AND expires_at > now();
                UPDATE operator_sessions SET checked_at = now() - interval '1 hour'
                WHERE account = 'sara.klein' AND expires_at > now()
                """)
            let refused = try await eventually(within: .seconds(10)) {
                try await kept()
            } until: {
                $0.allSatisfy { $0 == 401 }
            }
            let heard = ContinuousClock.now - lookedUp
            #expect(refused == [401, 401, 401, 401])
            // What a replica keeps, it trusts for 2 seconds from the lookup: refused sooner, it was told.
            #expect(heard < .seconds(2), "refused only after \(heard), as if nothing had been announced")
            try await first.directory.modify(locked + "delete: pwdAccountLockedTime\n")
            #expect(try await answers(hannah) == [401, 401, 401, 401])
        }

        // Peter's own session, used all along, goes on.
        #expect(try await HTTP.get(first.base + "/api/v1/me", token: peter).status == 200)
    }

    @Test(
        "a replica that is listed as running but does not answer holds a logout up for the 2 seconds a login is kept, no longer, and is named in the log"
    )
    func silentReplica() async throws {
        let server = try await RunningServer(extra: OperatorLoginTests.configuration)
        // A replica that seems to run (seen within the liveness window all through the test) and listens to nothing.
        let silent = UUID().uuidString.lowercased()
        _ = try await server.sql(
            """
            INSERT INTO server_instances (id, host, process_id, version, started_at, last_seen_at)
            VALUES ('\(silent)', 'gone.example', 1, 'test', now(), now() + interval '1 hour')
            """)
        let lena = try await server.token("lena.wolf")
        let started = ContinuousClock.now
        #expect(try await HTTP.post(server.base + "/api/v1/logout", token: lena).status == 204)
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(1900), "answered after \(took): it did not wait for the other replica")
        #expect(took < .seconds(8), "answered only after \(took)")
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: lena).status == 401)
        let logged = try await eventually(within: .seconds(5)) {
            server.process.standardErrorSoFar
        } until: {
            $0.contains("did not confirm in time that it forgot an ended login")
        }
        let warning = logged.split(separator: "\n").first { $0.contains("forgot an ended login") } ?? ""
        #expect(warning.lowercased().contains(silent), "\(warning)")
    }
}
