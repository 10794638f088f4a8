import Foundation
import ORAClient
import ORATestSupport
import Testing

/// No access before its record: a step that gives access (the person's consent, a control request) takes effect
/// only once its audit event is stored. While the audit chain is locked the session stands as it was — its state as
/// the API shows it, and no screen ticket — and it moves on when the lock goes.
@Suite("Access waits for its record")
struct RecordedFirstTests {
    /// Waits until a writer of the audit log waits for the chain's lock `EndingTests.lockChain` holds: the step
    /// that called it has been taken, and its record is waiting.
    static func waitForWaitingRecord(_ server: RunningServer) async throws {
        let waiting = try await eventually(
            within: .seconds(10),
            {
                try await server.sql(
                    """
                    SELECT count(*) > 0 FROM pg_locks
                    WHERE locktype = 'advisory' AND objid = \(EndingTests.chainLockKey & 0xffff_ffff) AND NOT granted
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """)
            }, until: { $0 == "t" })
        guard waiting == "t" else { throw TestSetupError("no audit record waited for the chain's lock") }
    }

    /// A server with `machine` enrolled and its agent running, and lena.wolf's offer to it (`ora offer machine
    /// arguments…`): the setup, the agent, lena's CLI and token, and the session's id.
    static func offer(
        _ machine: String, _ arguments: String...
    ) async throws -> (OfferSetup, ChildProcess, OperatorCLI, String, String) {
        let setup = try await OfferSetup.make(enrolling: machine)
        let agent = try setup.startAgent()
        let token = try await setup.server.token("lena.wolf")
        try await waitUntilOnline(machine.lowercased(), server: setup.server, token: token)
        let lena = try await OperatorCLI("lena.wolf", server: setup.server, ora: SourceTree.binary("ora"))
        let offered = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["offer", machine.lowercased()] + arguments,
            environment: lena.environment)
        guard offered.status == 0 else { throw TestSetupError("offer: \(offered.standardError)") }
        return (setup, agent, lena, token, sessionID(in: offered.standardOutput))
    }

    @Test(
        "the person's consent: the session stays awaiting consent and no screen ticket is issued until consent.granted is stored"
    )
    func consent() async throws {
        // The person answers this ticket once `consent-go` exists.
        let (setup, agent, _, lenaToken, id) = try await Self.offer("WS-0101", "--ticket", "INC0000004")
        defer { agent.send(SIGTERM) }
        let server = setup.server
        _ = try await session(id, on: server, token: lenaToken) { $0.state == .awaitingConsent }

        let holder = try await EndingTests.lockChain(server)
        defer { holder.send(SIGKILL) }
        _ = try setup.files.write("consent-go", "", permissions: 0o644)
        try await Self.waitForWaitingRecord(server)
        let held = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: lenaToken).decode(
            Schemas.Session.self)
        #expect(held.state == .awaitingConsent)
        let early = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: lenaToken)
        #expect(early.status == 409 && early.refusal?.error == "not_accepted", "\(early.body)")
        #expect(
            try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'consent.granted'") == "0")

        try await EndingTests.unlockChain(server, holder)
        _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }
        #expect(
            try await server.sql(
                "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE session_id = '\(id)'")
                == "offer.requested,offer.delivered,consent.granted,session.started")
        let ticket = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/screen", token: lenaToken)
        #expect(ticket.status == 201, "\(ticket.body)")
        let chain = try await server.auditChainIntact()
        #expect(chain.intact, "\(chain.body)")
    }

    @Test("a control request: the session stays viewing until control.requested is stored, then the person is asked")
    func controlRequest() async throws {
        let (setup, agent, lena, lenaToken, id) = try await Self.offer("WS-0102", "--control", "--ticket", "INC0000001")
        defer { agent.send(SIGTERM) }
        let server = setup.server
        _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }

        let holder = try await EndingTests.lockChain(server)
        defer { holder.send(SIGKILL) }
        async let requested = lena.run("session", "control", id)
        try await Self.waitForWaitingRecord(server)
        let held = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: lenaToken).decode(
            Schemas.Session.self)
        #expect(held.state == .viewing)
        #expect(held.controlRequests == 0)
        // The person was not asked.
        #expect(
            !((try? String(contentsOfFile: setup.files.path + "/questions.log", encoding: .utf8)) ?? "")
                .contains(#""question":"control""#))

        try await EndingTests.unlockChain(server, holder)
        let answer = await requested
        #expect(answer.status == 0, "\(answer.standardError)")
        // The person answers yes (`control-answer`).
        _ = try await session(id, on: server, token: lenaToken) { $0.state == .controlling }
        #expect(
            try await server.sql(
                "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE session_id = '\(id)'")
                == "offer.requested,offer.delivered,consent.granted,session.started,control.requested,control.granted")
        let chain = try await server.auditChainIntact()
        #expect(chain.intact, "\(chain.body)")
    }
}
