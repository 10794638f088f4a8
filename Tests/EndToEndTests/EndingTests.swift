import Foundation
import ORAClient
import ORATestSupport
import Testing

/// Ending access never waits for the audit log: with the chain head locked, an end takes effect at once — the
/// viewer is cut off, no new screen ticket is issued — and its record is stored, once, when the log can take it,
/// even across a restart.
@Suite("Ending never waits")
struct EndingTests {
    /// The key of the audit chain's lock (`AuditLog.chainLockKey`).
    static let chainLockKey: Int64 = 0x6f72_615f_6175_6474

    /// Holds the audit chain's lock from another session until the returned process is stopped; returns once the
    /// lock is held.
    static func lockChain(_ server: RunningServer) async throws -> ChildProcess {
        let holder = try server.services.backgroundSQL(
            "SELECT pg_advisory_lock(\(chainLockKey)); SELECT pg_sleep(600)", database: server.database)
        let held = try await eventually(
            within: .seconds(10),
            {
                try await server.sql(
                    """
                    SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = \(chainLockKey & 0xffff_ffff)
                        AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """
                ) == "1"
            }, until: { $0 })
        guard held else { throw TestSetupError("the chain lock was not taken") }
        return holder
    }

    /// Releases the lock `lockChain` took: its session is ended (psql's backend sleeps on without noticing its
    /// client leave).
    static func unlockChain(_ server: RunningServer, _ holder: ChildProcess) async throws {
        _ = try await server.services.superuserSQL(
            """
            SELECT pg_terminate_backend(pid) FROM pg_locks
            WHERE locktype = 'advisory' AND objid = \(chainLockKey & 0xffff_ffff) AND granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, database: server.database)
        holder.send(SIGTERM)
        _ = await holder.exit()
    }

    @Test(
        "End session while the chain head is locked: the viewer is cut off at once, no new ticket, the event stored once the lock goes"
    )
    func endWhileLocked() async throws {
        let desktop = try await TestDesktop()
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let server = setup.server
        let agent = try setup.startAgent("--display", desktop.display)
        defer { agent.send(SIGTERM) }
        let lenaToken = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0101", server: server, token: lenaToken)
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let offered = await lena.run("offer", "ws-0101", "--control", "--ticket", "INC0000001")
        #expect(offered.status == 0, "\(offered.standardError)")
        let id = sessionID(in: offered.standardOutput)
        _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }

        let port = try Network.freePort()
        let connect = try ChildProcess(
            SourceTree.binary("ora"), arguments: ["connect", id, "--listen", "127.0.0.1:\(port)"],
            environment: lena.environment)
        defer { connect.send(SIGKILL) }
        #expect(
            try await eventually(
                within: .seconds(15), { connect.standardOutputSoFar.contains("point a VNC viewer") }, until: { $0 }))

        let holder = try await Self.lockChain(server)
        defer { holder.send(SIGKILL) }
        // Granting is refused while nothing can be recorded...
        let refused = await lena.run("session", "control", id)
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("audit log unavailable"), "\(refused.standardError)")

        // ...ending is not: it answers while the lock is still held (an end that waited for its record would get 503 after the
        // writer's timeout), and its record is not stored until the lock goes (below).
        let ended = await setup.admin.run("session", "end", id)
        #expect(ended.status == 0, "\(ended.standardError)")
        let state = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: lenaToken).decode(
            Schemas.Session.self)
        #expect(state.state == .ended)
        #expect(state.endReason == .adminTerminated)
        // The viewer's local port closes at once.
        let finished = await connect.exit(within: .seconds(1))
        #expect(finished.status != ChildProcess.timedOut, "ora connect still runs after the end")
        #expect(finished.standardOutput.contains("the session has ended"), "\(finished.standardOutput)")
        let ticket = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: lenaToken)
        #expect(ticket.status == 409, "\(ticket.body)")
        // Nothing is stored while the lock is held: the end did not wait for its record.
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'session.ended'") == "0")

        try await Self.unlockChain(server, holder)
        #expect(
            try await eventually(
                within: .seconds(20),
                {
                    try await server.sql(
                        "SELECT count(*) FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'")
                        == "1"
                }, until: { $0 }))
        #expect(
            try await server.sql(
                "SELECT actor_id || '|' || (details->>'reason') FROM audit_events WHERE event = 'session.ended'")
                == "uid=peter.schmidt,ou=People,dc=corp,dc=example|admin_terminated")
        let chain = try await server.auditChainIntact()
        #expect(chain.intact, "\(chain.body)")
    }

    @Test("an end recorded while the log is locked survives a restart of the server, and is stored exactly once")
    func endSurvivesRestart() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0102")
        let server = setup.server
        var agent = try setup.startAgent()
        let lenaToken = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0102", server: server, token: lenaToken)
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let offered = await lena.run("offer", "ws-0102", "--control", "--ticket", "INC0000001")
        let id = sessionID(in: offered.standardOutput)
        _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }

        let holder = try await Self.lockChain(server)
        defer { holder.send(SIGKILL) }
        let ended = await lena.run("session", "end", id)
        #expect(ended.status == 0, "\(ended.standardError)")
        // The server stops while the record waits; the journal keeps it.
        _ = await server.stop()
        agent.send(SIGTERM)
        _ = await agent.exit()
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'session.ended'") == "0")
        try await Self.unlockChain(server, holder)
        try await server.start()
        #expect(
            try await eventually(
                within: .seconds(20),
                {
                    try await server.sql(
                        "SELECT count(*) FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'")
                        == "1"
                }, until: { $0 }))
        #expect(
            try await server.sql(
                "SELECT details->>'reason' FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'")
                == "helper_ended")
        // A second restart stores nothing twice.
        try await server.restart()
        agent = try setup.startAgent()
        defer { agent.send(SIGTERM) }
        try await waitUntilOnline("ws-0102", server: server, token: try await server.token("lena.wolf"))
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'session.ended'") == "1")
        #expect(
            try await server.sql("SELECT count(*) FROM (SELECT id FROM audit_events GROUP BY id HAVING count(*) > 1) d")
                == "0")
        let chain = try await server.auditChainIntact()
        #expect(chain.intact, "\(chain.body)")
    }
}
