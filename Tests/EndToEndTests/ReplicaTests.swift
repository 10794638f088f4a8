import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ORAClient
import ORATestSupport
import Testing

/// Two replicas of ora-server on one database: the helper talks to one, the machine's agent is connected to the
/// other, and everything works as on one server.
@Suite("Offers across replicas")
struct ReplicaTests {
    @Test("an offer, control and the end reach the agent through the replica that holds it; a crash ends its sessions")
    func offerThroughAnotherReplica() async throws {
        let replicas = try await Replicas.make(enrolling: "WS-0201")
        let (holder, front, agent, token, lena) = (
            replicas.holder, replicas.front, replicas.agent, replicas.token, replicas.lena
        )

        // Offer, consent, control and the end, all through the replica without the agent.
        let offered = await lena.run("offer", "ws-0201", "--control", "--ticket", "INC0000001", "--wait")
        #expect(offered.status == 0, "\(offered.standardError)")
        #expect(offered.standardOutput.contains("accepted: you see the screen of ws-0201"), "\(offered.standardOutput)")
        let id = sessionID(in: offered.standardOutput)
        let granted = await lena.run("session", "control", id, "--wait")
        #expect(granted.status == 0, "\(granted.standardError)")
        #expect(granted.standardOutput.contains("control granted"), "\(granted.standardOutput)")
        let listed = try await HTTP.get(front.base + "/api/v1/sessions", token: token)
        #expect(listed.body.lowercased().contains(#""id":"\#(id.lowercased())""#), "\(listed.body)")
        #expect(listed.body.contains(#""state":"controlling""#), "\(listed.body)")
        // Chat through the replica without the agent: numbered and recorded by the one running the session, and
        // followed, in order, on both.
        async let seenOnFront = chatLines(of: id, on: front, token: token, count: 2)
        async let seenOnHolder = chatLines(of: id, on: holder, token: token, count: 2)
        try await Task.sleep(for: .milliseconds(300))
        for line in ["Hello from the helpdesk", "Please open Outlook"] {
            let sent = await lena.run("session", "chat", id, line)
            #expect(sent.status == 0, "\(sent.standardError)")
        }
        for seen in [try await seenOnFront, try await seenOnHolder] {
            #expect(seen.map(\.sequence) == [1, 2])
            #expect(seen.map(\.text) == ["Hello from the helpdesk", "Please open Outlook"])
        }
        // A second offer to the busy machine is refused by the replica that runs its session.
        let busy = await lena.run("offer", "ws-0201", "--ticket", "INC0000001")
        #expect(busy.status == 2)
        #expect(busy.standardError.contains("ws-0201 is already in a session"), "\(busy.standardError)")
        // Someone else's session is not theirs to end, on any replica.
        let tom = try await front.token("tom.berger")
        #expect(try await HTTP.send("DELETE", front.base + "/api/v1/sessions/\(id)", token: tom).status == 404)
        let ended = await lena.run("session", "end", id)
        #expect(ended.standardOutput.contains("ended: the helper ended the session"), "\(ended.standardError)")
        #expect(
            try await auditEvents(of: id, on: front) == [
                "offer.requested", "offer.delivered", "consent.granted", "session.started", "control.requested",
                "control.granted", "chat.message", "chat.message", "session.ended",
            ])
        // The offer was decided and recorded by the replica holding the agent, for the helper's address.
        #expect(
            try await front.sql(
                "SELECT actor_name, source_address FROM audit_events WHERE event = 'offer.requested' AND session_id = '\(id)'"
            ) == "lena.wolf|127.0.0.1")

        // The replica holding the agent crashes mid-session: the other one ends the session for it.
        let crashed = await lena.run("offer", "ws-0201", "--ticket", "INC0000001", "--wait")
        #expect(crashed.status == 0, "\(crashed.standardError)")
        let orphan = sessionID(in: crashed.standardOutput)
        await holder.crash()
        // Its heartbeat stops; a minute later it no longer counts as running.
        _ = try await holder.sql("UPDATE server_instances SET last_seen_at = now() - interval '1 minute'")
        let gone = try await session(orphan, on: front, token: token) { $0.state == .ended }
        #expect(gone.endReason?.rawValue == "server_restart", "\(gone)")
        #expect(
            try await front.sql(
                "SELECT details->>'reason', details->>'last_state' FROM audit_events WHERE event = 'session.ended' AND session_id = '\(orphan)'"
            ) == "server_restart|viewing")
        #expect(try await auditEvents(of: orphan, on: front).last == "session.ended")

        // The agent comes back to the restarted replica; a revocation made on the other disconnects it at once.
        try await holder.start()
        // The agent has been backing off while its server was down.
        try await waitUntilOnline("ws-0201", server: front, token: token, within: .seconds(90))
        let admin = try await OperatorCLI("peter.schmidt", server: front, ora: SourceTree.binary("ora"))
        #expect(await admin.run("agents", "revoke", "ws-0201").status == 0)
        let refused = await agent.exit()
        #expect(refused.status == 2)
        #expect(
            refused.standardError.contains("this machine is not enrolled, or its enrollment was revoked"),
            "\(refused.standardError)")
        let auditor = try await front.token("sara.klein")
        let verified = try await HTTP.get(front.base + "/api/v1/audit/verify", token: auditor)
        #expect(verified.json(Schemas.AuditVerificationReport.self)?.intact == true, "\(verified.body)")
    }

    @Test("a replica stops promptly while a helper follows, through it, a session held by another; the follow ends")
    func stopWhileFollowingElsewhere() async throws {
        let replicas = try await Replicas.make(enrolling: "WS-0202")
        let offered = await replicas.lena.run("offer", "ws-0202", "--ticket", "INC0000001", "--wait")
        #expect(offered.status == 0, "\(offered.standardError)")
        let id = sessionID(in: offered.standardOutput)

        // The helper's browser follows the session's events through the replica without the agent.
        var request = HTTPClientRequest(url: replicas.front.base + "/api/v1/sessions/\(id)/events")
        request.headers.add(name: "Authorization", value: "Bearer \(replicas.token)")
        let response = try await TestTLS.httpClient.execute(request, timeout: .seconds(600))
        #expect(response.status == .ok)
        var events = response.body.makeAsyncIterator()
        var received = ""
        while !received.contains("\n\n"), let chunk = try await events.next() { received += String(buffer: chunk) }
        #expect(received.contains(#""state":"viewing""#), "\(received)")

        // It stops by itself, without its stopping limit's help (the harness checks that too), and the stream ends
        // as a stream should.
        let stopped = await replicas.front.stop()
        #expect(stopped.status == 0, "\(stopped.standardError)")
        #expect(stopped.standardError.contains("ora-server stopped"), "\(stopped.standardError)")
        #expect(!stopped.standardError.contains("did not stop within"), "\(stopped.standardError)")
        while let chunk = try await events.next() { received += String(buffer: chunk) }
        // The session itself goes on where the agent is.
        let still = try await HTTP.get(replicas.holder.base + "/api/v1/sessions/\(id)", token: replicas.token)
        #expect(still.json(Schemas.Session.self)?.state.rawValue == "viewing", "\(still.body)")
        #expect(replicas.agent.isRunning)
    }

    @Test(
        """
        the screen of a machine held by another replica: the agent's leg and the viewers reach it through the other \
        replica; view-only kept, closed by the end
        """)
    func screenThroughAnotherReplica() async throws {
        let desktop = try await TestDesktop()
        // As behind one load balancer: the agent's screen leg and the helper's viewers all reach the front.
        let replicas = try await Replicas.make(
            enrolling: "WS-0201", agentArguments: ["--display", desktop.display], agentLegsToFront: true)
        let (front, holder, lena, token) = (replicas.front, replicas.holder, replicas.lena, replicas.token)
        let screens = ScreenTests()
        var connect: ChildProcess?
        do {
            let offered = await lena.run("offer", "ws-0201", "--ticket", "INC0000001", "--wait")
            #expect(offered.status == 0, "\(offered.standardError)")
            let id = sessionID(in: offered.standardOutput)
            // Each replica says where the other reaches its relay port, and the key its TLS there has.
            #expect(
                try await eventually {
                    try await front.sql(
                        "SELECT count(*) FROM server_instances WHERE relay_address LIKE '127.0.0.1:%' AND relay_key_sha256 IS NOT NULL"
                    ) == "2"
                })

            // `ora connect` through the replica without the agent: the desktop's picture arrives.
            let files = try TemporaryDirectory()
            let script = try files.write("viewer.py", ScreenTests.viewerScript)
            let port = try Network.freePort()
            let started = try lena.start(["connect", id, "--listen", "127.0.0.1:\(port)"])
            connect = started
            #expect(try await eventually { started.standardOutputSoFar.contains("point a VNC viewer") })
            let captured = try await screens.viewer("capture", port: port, script: script)
            let pixels = try #require(
                try JSONSerialization.jsonObject(with: Data(captured.utf8)) as? [String: [Int]], "\(captured)")
            #expect(pixels["size"] == [320, 240])
            #expect(pixels["root"] == ScreenTests.rootColour)
            // View-only holds on the way through: the replica that holds the agent drops the input and records it.
            _ = try await screens.viewer("input", port: port, script: script)
            #expect(
                try await eventually {
                    try await holder.sql("SELECT count(*) FROM audit_events WHERE event = 'input.blocked'") == "1"
                })
            #expect(desktop.inputs.isEmpty, "\(desktop.inputs)")

            // The browser's viewer through the same replica: the desktop's greeting comes through its WebSocket.
            let ticket = try await HostileViewerTests().ticket(id, on: front, token: token)
            let outcome = try await HostileViewerTests().viewer(front, ticket: ticket, linger: .milliseconds(500))
            #expect(outcome.greeting == "RFB 003.008\n", "\(outcome)")
            // Its ticket was for one viewer: the second time, the replica that issued it refuses it and records so.
            let replayed = try await HostileViewerTests().viewer(front, ticket: ticket, linger: .seconds(5))
            #expect(replayed.greeting.isEmpty, "\(replayed)")
            #expect(
                try await eventually {
                    try await holder.sql(
                        "SELECT details->>'leg' || ':' || (details->>'reason') FROM audit_events WHERE event = 'screen.refused'"
                    )
                        == "viewer:ticket_replayed"
                })
            // Each screen is recorded once, by the replica that holds the agent, for the helper's address.
            #expect(
                try await holder.sql(
                    "SELECT count(*), min(source_address) FROM audit_events WHERE event = 'screen.opened' AND session_id = '\(id)'"
                ) == "3|127.0.0.1")
            // The front carried the agent's legs as well as the viewers'; the replayed ticket's leg it could not.
            let log = front.process.standardErrorSoFar.split(separator: "\n")
            let carried = log.filter { $0.contains("carrying a screen leg to the replica that issued its ticket") }
            #expect(carried.filter { $0.contains("leg=agent") }.count == 3, "\(carried)")
            #expect(carried.filter { $0.contains("leg=viewer") }.count == 3, "\(carried)")
            #expect(
                log.filter { $0.contains("could not carry a screen leg") && $0.contains("leg=viewer") }.count == 1,
                "\(log.suffix(20))")
            let metrics = try await MetricsScrape(front)
            #expect(metrics["ora_screen_legs_carried_total{leg=\"agent\",outcome=\"carried\"}"] == 3)
            #expect(metrics["ora_screen_legs_carried_total{leg=\"viewer\",outcome=\"carried\"}"] == 3)
            #expect(metrics["ora_screen_legs_carried_total{leg=\"viewer\",outcome=\"failed\"}"] == 1)
            #expect(
                try await MetricsScrape(holder)["ora_screen_legs_carried_total{leg=\"agent\",outcome=\"carried\"}"] == 0
            )
            // A leg that says another replica carried it is never carried on (two replicas that named each other's
            // address would pass it back and forth): refused, and recorded, where it arrived.
            let ticketOfHolder = try await holder.sql(
                "SELECT left(id::text, 8) FROM server_instances WHERE relay_address <> '127.0.0.1:\(replicas.frontRelay)'"
            )
            let looped = try await RelayPort.exchange(
                port: replicas.frontRelay,
                send: "ORA-SCREEN/1 viewer \(ticketOfHolder + String(repeating: "0", count: 56)) carried\n", tls: true)
            #expect(looped == "", "\(looped)")
            #expect(
                try await eventually {
                    try await front.sql(
                        "SELECT count(*) FROM audit_events WHERE event = 'screen.refused' AND details->>'reason' = 'unknown_ticket'"
                    ) == "1"
                })

            // The end, asked of either replica, closes the carried viewer at once.
            #expect(await lena.run("session", "end", id).status == 0)
            let finished = await started.exit()
            #expect(finished.standardOutput.contains("the session has ended"), "\(finished.standardOutput)")
            let auditor = try await front.token("sara.klein")
            let verified = try await HTTP.get(front.base + "/api/v1/audit/verify", token: auditor)
            #expect(verified.json(Schemas.AuditVerificationReport.self)?.intact == true, "\(verified.body)")
        } catch {
            connect?.send(SIGKILL)
            Issue.record(
                """
                ora connect: \(connect?.standardErrorSoFar ?? "")
                front: \(front.process.standardErrorSoFar.suffix(3000))
                holder: \(holder.process.standardErrorSoFar.suffix(3000))
                agent: \(replicas.agent.standardErrorSoFar.suffix(2000))
                """)
            throw error
        }
        connect?.send(SIGKILL)
    }

    /// Two replicas: the agent of `machine` connects to the first, the one it enrolled with (`holder`); Lena Wolf
    /// uses the second (`front`), where the machine is seen online.
    struct Replicas {
        let setup: OfferSetup
        let front: RunningServer
        let agent: ChildProcess
        let token: String
        let lena: OperatorCLI
        /// The front's relay port, when chosen (`agentLegsToFront`); 0 otherwise.
        var frontRelay = 0
        var holder: RunningServer { setup.server }

        /// - Parameter agentLegsToFront: the holder tells its agents the front's relay port, as if both were behind
        ///   one load balancer that sent the agent's screen leg to the front.
        static func make(
            enrolling machine: String, agentArguments: [String] = [], agentLegsToFront: Bool = false
        ) async throws -> Replicas {
            let frontRelay = try Network.freePort()
            let setup = try await OfferSetup.make(
                enrolling: machine, screenExtra: agentLegsToFront ? "  public_relay_port: \(frontRelay)" : "")
            let front = try await RunningServer(
                sharing: setup.server, extra: OfferFixtures.configuration, relayPort: agentLegsToFront ? frontRelay : 0)
            let agent = try setup.startAgent(arguments: agentArguments)
            let token = try await front.token("lena.wolf")
            try await waitUntilOnline(machine.lowercased(), server: front, token: token)
            let lena = try await OperatorCLI("lena.wolf", server: front, ora: SourceTree.binary("ora"))
            return Replicas(
                setup: setup, front: front, agent: agent, token: token, lena: lena,
                frontRelay: agentLegsToFront ? frontRelay : 0)
        }
    }
}
