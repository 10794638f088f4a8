import Crypto
import Foundation
import HummingbirdWSClient
import Logging
import ORAClient
import ORACore
import ORATestSupport
import Synchronization
import Testing

/// A compromised or buggy agent connection cannot make the server take an answer the person at the machine did not
/// sign: an impostor speaks the protocol with the machine's real device key and sends what a real agent never would.
@Suite("Forged consent")
struct ForgedConsentTests {
    @Test("receipts with a foreign key, for another session, question or offer, or replayed, are refused and audited")
    func forgedReceipts() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0201")
        let (server, state) = (setup.server, setup.state)
        let pem = try String(contentsOfFile: state + "/device-key.pem", encoding: .utf8)
        let keyBytes = try P256.Signing.PrivateKey(pemRepresentation: pem).rawRepresentation
        let lena = try await server.token("lena.wolf")
        let sent = Steps()

        let url = server.webSocketBase + "/agent/v1/connect"
        let serverName = "127.0.0.1"
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await WebSocketClient.connect(
                    url: url, tlsConfiguration: TestTLS.clientConfiguration, logger: Logger(label: "impostor")
                ) { inbound, outbound, _ in
                    let key = try P256.Signing.PrivateKey(rawRepresentation: keyBytes)
                    let foreign = P256.Signing.PrivateKey()
                    var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                    func send(_ message: AgentProtocol.AgentMessage) async throws {
                        try await outbound.write(.text(String(decoding: AgentProtocol.encode(message), as: UTF8.self)))
                    }
                    func next() async throws -> AgentProtocol.ServerMessage? {
                        guard case .text(let text) = try await messages.next() else { return nil }
                        return try AgentProtocol.decodeServerMessage(Array(text.utf8))
                    }
                    func receipt(
                        _ question: ConsentReceipt.Question, _ request: Int, _ offer: Offer,
                        signedBy signer: P256.Signing.PrivateKey, answer: ConsentAnswer = .granted
                    ) throws -> AgentProtocol.AgentMessage {
                        .consent(
                            try ConsentReceipt(
                                answering: question, request: request, of: offer, answer: answer,
                                at: AuditTimestamp(Date()),
                                signingWith: signer))
                    }
                    try await send(.hello(machine: "WS-0201", agentVersion: "impostor", operatingSystem: "none"))
                    guard case .challenge(let nonce) = try await next() else { throw TestSetupError("no challenge") }
                    try await send(
                        .authenticate(
                            signature: try AgentAuthentication(server: serverName, machine: "WS-0201", nonce: nonce)
                                .sign(with: key)))
                    guard case .welcome = try await next() else { throw TestSetupError("not welcomed") }
                    sent.steps.withLock { $0.append("connected") }
                    guard case .offer(let offer) = try await next() else { throw TestSetupError("no offer") }
                    try await send(.offerReceived(session: offer.session))
                    var otherSession = offer
                    otherSession.session = UUID()
                    var otherOffer = offer
                    otherOffer.ticket = "INC0009999"
                    // Each of these must be refused; the session must stay waiting for a real answer.
                    try await send(try receipt(.session, 0, offer, signedBy: foreign))
                    try await send(try receipt(.session, 0, otherSession, signedBy: key))
                    try await send(try receipt(.control, 1, offer, signedBy: key))
                    try await send(try receipt(.session, 0, otherOffer, signedBy: key))
                    // The real answer, then the same answer once more: it answers nothing now.
                    let yes = try receipt(.session, 0, offer, signedBy: key)
                    try await send(yes)
                    try await send(yes)
                    sent.steps.withLock { $0.append("answered") }
                    guard case .controlRequest(_, let request) = try await next() else {
                        throw TestSetupError("no control request")
                    }
                    // The offer's receipt replayed for the control request, then an answer for request 0.
                    try await send(yes)
                    try await send(try receipt(.control, request - 1, offer, signedBy: key))
                    try await send(try receipt(.control, request, offer, signedBy: key, answer: .declined))
                    sent.steps.withLock { $0.append("control answered") }
                    while try await next() != nil {}
                }
            }
            // The helper's side.
            try await waitFor { sent.steps.withLock { $0.contains("connected") } }
            let offered = try await HTTP.post(
                server.base + "/api/v1/offers",
                json: #"{"machine": "ws-0201", "mode": "control", "ticket": "INC0000001"}"#,
                token: lena)
            #expect(offered.status == 201, "\(offered.body)")
            let id = try #require(offered.json(Schemas.Session.self)?.id)
            try await waitFor { sent.steps.withLock { $0.contains("answered") } }
            _ = try await session(id, on: server, token: lena, within: .seconds(10)) { $0.state == .viewing }
            // The repeated answer is handled before control is asked for; after, it would answer the wrong question.
            try await waitFor {
                (try? await server.sql("SELECT count(*) FROM audit_events WHERE event = 'consent.rejected'")) == "5"
            }
            let control = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/control", token: lena)
            #expect(control.status == 200, "\(control.body)")
            try await waitFor { sent.steps.withLock { $0.contains("control answered") } }
            // Sent is not yet read: the session ends only once the server has recorded every answer.
            try await waitFor {
                let rejected = try? await server.sql(
                    "SELECT count(*) FROM audit_events WHERE event = 'consent.rejected'")
                let denied = try? await server.sql(
                    "SELECT count(*) FROM audit_events WHERE event = 'control.denied' AND session_id = '\(id)'")
                return rejected == "7" && denied == "1"
            }
            // The refused control answer is recorded: the session goes on, view-only.
            let after = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: lena)
            #expect(after.json(Schemas.Session.self)?.state == .viewing, "\(after.body)")
            _ = try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: lena)
            group.cancelAll()

            let reasons = try await server.sql(
                "SELECT string_agg(details->>'reason', ',' ORDER BY sequence) FROM audit_events WHERE event = 'consent.rejected'"
            )
            #expect(
                reasons
                    == "bad_signature,unknown_session,wrong_question,different_offer,no_question_pending,wrong_question,replayed_request"
            )
            #expect(
                try await server.sql(
                    "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE session_id = '\(id)' AND event <> 'consent.rejected'"
                )
                    == "offer.requested,offer.delivered,consent.granted,session.started,control.requested,control.denied,session.ended"
            )
            // The seven turned away are counted for the alert that watches for them; the refused control request too.
            let metrics = try await MetricsScrape(server)
            #expect(metrics["ora_consent_rejected_total"] == 7)
            #expect(metrics["ora_control_requests_total{answer=\"declined\"}"] == 1)
        }
    }

    @Test(
        "an offer goes to the key the agent proved on connecting; a yes from a machine revoked or re-keyed since then, or whose enrollment the database cannot tell, gives no access"
    )
    func enrollmentChangedSinceConnecting() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0201")
        let server = setup.server
        let agent = try setup.startAgent()
        let lena = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0201", server: server, token: lena)
        let otherKey = DevicePublicKey.text(P256.Signing.PrivateKey().publicKey)
        // As if another server had revoked or re-keyed the machine and could not reach this one to close its agent's
        // connection: the row changes, the connection stays. Then, with the key put back, a database that cannot
        // answer the question (the column it reads is gone for a moment). The person says yes each time (ticket
        // ending in 1).
        let enrolledKey = try await server.sql("SELECT public_key FROM machines WHERE name = 'ws-0201'")
        let row = "WHERE name = 'ws-0201'"
        for (change, undo, reason) in [
            ("UPDATE machines SET revoked_at = now(), revoked_by = 'cn=elsewhere' \(row)", nil, "machine_revoked"),
            (
                "UPDATE machines SET revoked_at = NULL, revoked_by = NULL, public_key = '\(otherKey)' \(row)",
                "UPDATE machines SET public_key = '\(enrolledKey)' \(row)", "key_replaced"
            ),
            (
                "ALTER TABLE machines RENAME COLUMN public_key TO public_key_elsewhere",
                "ALTER TABLE machines RENAME COLUMN public_key_elsewhere TO public_key", "database_unavailable"
            ),
        ] {
            _ = try await server.sql(change)
            let offered = try await HTTP.post(
                server.base + "/api/v1/offers",
                json: #"{"machine": "ws-0201", "mode": "view", "ticket": "INC0000001"}"#,
                token: lena)
            #expect(offered.status == 201, "\(offered.body)")
            let id = try #require(offered.json(Schemas.Session.self)?.id)
            try await waitFor {
                (try? await server.sql(
                    "SELECT details->>'reason' FROM audit_events WHERE event = 'consent.rejected' AND session_id = '\(id)'"
                )) == reason
            }
            let after = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: lena)
            #expect(after.json(Schemas.Session.self)?.state == .awaitingConsent, "\(after.body)")
            #expect(
                try await auditEvents(of: id, on: server) == ["offer.requested", "offer.delivered", "consent.rejected"])
            let ended = try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: lena)
            #expect(ended.status == 200, "\(ended.body)")
            if let undo { _ = try await server.sql(undo) }
        }
        #expect(agent.isRunning)
    }

    @Test(
        "a connection left open after its machine was revoked or re-keyed elsewhere is closed at the next enrollment check, and its session ends"
    )
    func enrollmentCheckClosesConnections() async throws {
        let setup = try await OfferSetup.make(
            enrolling: "WS-0201", configuration: OfferFixtures.configuration + "\n  enrollment_check_interval: 1s")
        let server = setup.server
        var agent = try setup.startAgent()
        defer { agent.send(SIGTERM) }
        let lena = try await server.token("lena.wolf")
        let otherKey = DevicePublicKey.text(P256.Signing.PrivateKey().publicKey)
        // As if another server had revoked or re-keyed the machine and could not reach this one: the row changes,
        // and the check closes the connection all the same, ending the session running over it.
        for (number, change) in [
            "revoked_at = now(), revoked_by = 'cn=elsewhere'",
            "revoked_at = NULL, revoked_by = NULL, public_key = '\(otherKey)'",
        ].enumerated() {
            // Each time a fresh agent process, connected once.
            try await waitFor { agent.standardErrorSoFar.contains("[ORAAgent] connected") }
            let offered = try await HTTP.post(
                server.base + "/api/v1/offers",
                json: #"{"machine": "ws-0201", "mode": "view", "ticket": "INC0000001"}"#, token: lena)
            #expect(offered.status == 201, "\(offered.body)")
            let id = try #require(offered.json(Schemas.Session.self)?.id)
            _ = try await session(id, on: server, token: lena) { $0.state == .viewing }
            _ = try await server.sql("UPDATE machines SET \(change) WHERE name = 'ws-0201'")
            let ended = try await session(id, on: server, token: lena) { $0.state == .ended }
            #expect(ended.endReason == .agentDisconnected)
            #expect(
                try await server.sql(
                    "SELECT count(*) FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'") == "1")
            // The machine list no longer shows it connected.
            try await waitFor {
                (try? await server.sql("SELECT connected_instance IS NULL FROM machines WHERE name = 'ws-0201'")) == "t"
            }
            if number == 0 {
                // Revoked: its agent is refused when it comes back; lifted again for the re-key that follows.
                _ = try await server.sql(
                    "UPDATE machines SET revoked_at = NULL, revoked_by = NULL WHERE name = 'ws-0201'")
                agent.send(SIGTERM)
                _ = await agent.exit(within: .seconds(30))
                agent = try setup.startAgent()
            }
        }
    }

    /// Waits for `condition`, at most a minute: a loaded machine records the refused answers slowly, never wrongly.
    private func waitFor(_ condition: () async -> Bool) async throws {
        for _ in 0..<1200 {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("timed out waiting")
    }
}

/// What the impostor has done so far, for the helper's side to wait on.
final class Steps: Sendable {
    let steps = Mutex<[String]>([])
}
