import Foundation
import ORAClient
import ORATestSupport
import Testing

/// The agents' WebSocket as the server keeps it: handshakes that stall, requests that are not WebSocket upgrades,
/// and agents that stop answering.
@Suite("Agent connections")
struct AgentConnectionTests {
    @Test(
        "an agent that stops answering is disconnected at the next ping and its session ends; running again, it is back"
    )
    func frozenAgent() async throws {
        let setup = try await OfferSetup.make(
            enrolling: "WS-0101", configuration: OfferFixtures.configuration + "\n  ping_interval: 1s")
        let server = setup.server
        let agent = try setup.startAgent()
        defer { agent.send(SIGKILL) }
        let lenaToken = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0101", server: server, token: lenaToken)
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let offered = await lena.run("offer", "ws-0101", "--ticket", "INC0000001", "--wait")
        #expect(offered.status == 0, "\(offered.standardError)")
        let id = sessionID(in: offered.standardOutput)

        // Stopped, the agent keeps its connection open but answers nothing, as a machine that lost its network.
        agent.send(SIGSTOP)
        let ended = try await session(id, on: server, token: lenaToken, within: .seconds(15)) {
            $0.state == .ended
        }
        #expect(ended.endReason?.rawValue == "agent_disconnected", "\(ended)")
        let machines = try await HTTP.get(server.base + "/api/v1/machines", token: lenaToken)
        #expect(machines.body.contains(#""name":"ws-0101","online":false"#), "\(machines.body)")
        #expect(server.process.standardErrorSoFar.contains("agent disconnected"))

        // Running again, it finds its connection closed and connects anew.
        agent.send(SIGCONT)
        try await waitUntilOnline("ws-0101", server: server, token: lenaToken, within: .seconds(30))
    }

    @Test("a handshake that stalls is closed after 10 seconds; a request that is not an upgrade gets 400")
    func stalledHandshake() async throws {
        let server = try await RunningServer()
        let port = try #require(URL(string: server.base)?.port)

        let plain = try await RelayPort.exchange(
            port: port, send: "GET /agent/v1/connect HTTP/1.1\r\nHost: localhost\r\n\r\n", tls: true)
        #expect(plain.hasPrefix("HTTP/1.1 400 Bad Request"), "\(plain)")
        #expect(plain.contains("agents connect here with a WebSocket upgrade"))

        // A WebSocket that never says hello: the server answers the upgrade, waits 10 seconds, sends a close frame
        // (1008, policy violation) and closes.
        let upgrade = """
            GET /agent/v1/connect HTTP/1.1\r
            Host: localhost\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13\r
            \r

            """
        let started = ContinuousClock.now
        let silent = try await RelayPort.exchange(port: port, send: upgrade, within: .seconds(30), tls: true)
        let waited = ContinuousClock.now - started
        #expect(silent.hasPrefix("HTTP/1.1 101 Switching Protocols"), "\(silent)")
        #expect(silent.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "the accept key of RFC 6455's example")
        #expect(silent.contains("the handshake took too long"), "\(silent)")
        #expect(waited >= .seconds(9), "closed after \(waited), not before the 10 seconds")

        // The server goes on serving.
        #expect(try await HTTP.get(server.base + "/healthz").status == 200)
    }
}
