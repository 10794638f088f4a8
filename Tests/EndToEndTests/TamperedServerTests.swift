import Foundation
import ORATestSupport
import Testing

/// The agent is the authority on control: a server that opens the screen and sends the helper's input without the
/// person's grant gets nothing onto the desktop. Here the "server" is a script that speaks the agent protocol and
/// the relay port itself, and skips every check the real server makes; the agent, x11vnc and the Xvfb desktop are
/// real.
@Suite("A tampered server")
struct TamperedServerTests {
    /// The tampered server. Arguments: machine, WebSocket port, relay port, directory for markers. It welcomes the
    /// agent without checking its signature, offers a session, opens the screen as soon as the person accepts,
    /// speaks RFB as a viewer, and sends keyboard and pointer input without ever asking for control (phase 1).
    /// When the file `go` appears, it asks for control the proper way, and once the agent's receipt grants it,
    /// sends the same input again (phase 2).
    static let script = """
        import asyncio, json, os, sys, uuid
        import websockets
        machine, ws_port, relay_port, markers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        session = str(uuid.uuid4())
        messages = asyncio.Queue()
        finished = asyncio.Event()

        def mark(name):
            open(os.path.join(markers, name), "w").close()

        async def send_input(writer):
            writer.write(bytes([5, 0, 0, 250, 0, 170]))           # pointer onto the window
            writer.write(bytes([5, 1, 0, 250, 0, 170]))           # button 1 down
            writer.write(bytes([5, 0, 0, 250, 0, 170]))           # and up
            writer.write(bytes([4, 1, 0, 0, 0, 0, 0, 0x61]))      # key a down
            writer.write(bytes([4, 0, 0, 0, 0, 0, 0, 0x61]))      # and up
            writer.write(bytes([3, 1, 0, 0, 0, 0, 1, 64, 0, 240]))
            await writer.drain()

        async def relay(reader, writer):
            await reader.readline()
            writer.write(b"ORA-SCREEN/1 ok\\n")
            await reader.readexactly(12)
            writer.write(b"RFB 003.008\\n")
            count = (await reader.readexactly(1))[0]
            await reader.readexactly(count)
            writer.write(bytes([1]))
            await reader.readexactly(4)
            writer.write(bytes([1]))
            header = await reader.readexactly(24)
            await reader.readexactly(int.from_bytes(header[20:24], "big"))
            await send_input(writer)
            await asyncio.sleep(1.5)
            mark("phase1")
            while not os.path.exists(os.path.join(markers, "go")):
                await asyncio.sleep(0.1)
            await messages.put("control")
            while not os.path.exists(os.path.join(markers, "granted")):
                await asyncio.sleep(0.1)
            await send_input(writer)
            await asyncio.sleep(1.5)
            mark("phase2")
            finished.set()

        async def agent(ws):
            await ws.recv()
            await ws.send(json.dumps({"type": "challenge", "nonce": "bm90IGNoZWNrZWQ="}))
            await ws.recv()
            await ws.send(json.dumps({"type": "welcome", "machine": machine}))
            offer = {"session": session, "machine": machine,
                     "helper": {"account": "mallory", "dn": "uid=mallory,dc=example", "display_name": "Mallory"},
                     "mode": "control", "ticket": "INC0000001", "reason": None, "policy_version": 1, "policies": ["none"],
                     "consent_timeout_seconds": 30, "issued_at": "2026-11-22T09:33:20.123456Z"}
            await ws.send(json.dumps({"type": "offer", "offer": offer}))
            async def reader():
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "consent" and message["receipt"]["question"] == "session":
                        await ws.send(json.dumps({"type": "open_screen", "session": session,
                                                  "ticket": "ab" * 32, "port": relay_port}))
                    if message["type"] == "consent" and message["receipt"]["question"] == "control":
                        if message["receipt"]["answer"] == "granted":
                            mark("granted")
            async def writer():
                while True:
                    if await messages.get() == "control":
                        await ws.send(json.dumps({"type": "control_request", "session": session, "request": 1}))
            tasks = [asyncio.create_task(reader()), asyncio.create_task(writer())]
            await finished.wait()
            for task in tasks:
                task.cancel()

        async def main():
            relay_server = await asyncio.start_server(relay, "127.0.0.1", relay_port)
            async with websockets.serve(agent, "127.0.0.1", ws_port):
                mark("listening")
                await finished.wait()
                await asyncio.sleep(0.5)
            relay_server.close()

        asyncio.run(main())
        """

    /// Rewrites the agent's enrollment so that it connects to the tampered server on `port`.
    static func pointAgent(of setup: OfferSetup, at port: Int) throws {
        let record = setup.state + "/agent.json"
        var enrollment = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: record))) as? [String: Any])
        enrollment["server"] = "http://127.0.0.1:\(port)"
        try JSONSerialization.data(withJSONObject: enrollment).write(to: URL(fileURLWithPath: record))
    }

    @Test("input sent before the person granted control never reaches the desktop; after their grant it does")
    func agentEnforcesControl() async throws {
        let desktop = try await TestDesktop()
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let files = try TemporaryDirectory()
        let script = try files.write("tampered.py", Self.script)
        let markers = files.path

        // The agent's enrollment now points at the tampered server.
        let (socketPort, relayPort) = (try Network.freePort(), try Network.freePort())
        try Self.pointAgent(of: setup, at: socketPort)

        let server = try ChildProcess(
            try ScreenTests.testPython(), arguments: [script, "ws-0101", "\(socketPort)", "\(relayPort)", markers])
        defer { server.send(SIGKILL) }
        func marked(_ name: String) -> Bool { FileManager.default.fileExists(atPath: markers + "/" + name) }
        #expect(try await eventually { marked("listening") }, "\(server.standardErrorSoFar)")

        // The person at the machine (the consent script) accepts the offer and, later, the control request.
        let agent = try setup.startAgent("--display", desktop.display)
        defer { agent.send(SIGKILL) }
        #expect(
            try await eventually(within: .seconds(30)) { marked("phase1") },
            "server: \(server.standardErrorSoFar)\nagent: \(agent.standardErrorSoFar)")
        #expect(desktop.inputs.isEmpty, "input reached the desktop without control: \(desktop.inputs)")
        #expect(agent.standardErrorSoFar.contains("dropping the helper's input: control is not granted"))

        try files.write("go", "")
        #expect(
            try await eventually(within: .seconds(30)) { marked("phase2") },
            "server: \(server.standardErrorSoFar)\nagent: \(agent.standardErrorSoFar)")
        #expect(desktop.inputs.contains { $0.hasPrefix("KeyPress") }, "\(desktop.inputs)")
        #expect(desktop.inputs.contains { $0.hasPrefix("ButtonPress") }, "\(desktop.inputs)")
    }

    /// A tampered server that has one of the machine's invitations but not its password. Arguments: machine,
    /// WebSocket port, relay port, directory for markers, the invitation's id. It opens the invitation and answers
    /// the machine's challenge with a made-up proof; then, as if the machine had let it through, it offers a session
    /// naming the invitation (for the session it opened and for another) and opens the screen for both.
    static let invitationScript = """
        import asyncio, base64, json, os, sys, uuid
        import websockets
        machine, ws_port, relay_port, markers, invitation = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
        finished = asyncio.Event()

        def mark(name, content=""):
            with open(os.path.join(markers, name), "w") as f:
                f.write(content)

        async def relay(reader, writer):
            mark("screen")

        def offer(session):
            return {"session": session, "machine": machine, "invitation": invitation,
                    "helper": {"account": "mallory", "dn": "uid=mallory,dc=example", "display_name": "Mallory"},
                    "mode": "control", "ticket": None, "reason": None, "policy_version": 1, "policies": ["none"],
                    "consent_timeout_seconds": 30, "issued_at": "2026-11-22T09:33:20.123456Z"}

        async def agent(ws):
            await ws.recv()
            await ws.send(json.dumps({"type": "challenge", "nonce": "bm90IGNoZWNrZWQ="}))
            await ws.recv()
            await ws.send(json.dumps({"type": "welcome", "machine": machine}))
            opened, other = str(uuid.uuid4()), str(uuid.uuid4())
            await ws.send(json.dumps({"type": "open_invitation", "invitation": invitation, "session": opened,
                                      "operator_dn": "uid=mallory,dc=example"}))
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "invitation_challenge":
                    forged = {"ephemeral_key": base64.b64encode(b"\\x04" + os.urandom(64)).decode(),
                              "box": base64.b64encode(os.urandom(60)).decode()}
                    await ws.send(json.dumps({"type": "invitation_proof", "challenge": message["challenge"],
                                              "proof": forged}))
                elif message["type"] == "invitation_decision":
                    mark("decision", json.dumps(message["decision"], separators=(",", ":")))
                    for session in (opened, other):
                        await ws.send(json.dumps({"type": "offer", "offer": offer(session)}))
                        await ws.send(json.dumps({"type": "open_screen", "session": session,
                                                  "ticket": "ab" * 32, "port": relay_port}))
                    await asyncio.sleep(3)
                    mark("done")
                    finished.set()
                    return
                elif message["type"] in ("offer_received", "consent"):
                    mark("asked", raw)

        async def main():
            relay_server = await asyncio.start_server(relay, "127.0.0.1", relay_port)
            async with websockets.serve(agent, "127.0.0.1", ws_port):
                mark("listening")
                await finished.wait()
            relay_server.close()

        asyncio.run(main())
        """

    @Test(
        "with an invitation but not its password, a tampered server gets neither the person's question nor the screen")
    func invitationWithoutPassword() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let files = try TemporaryDirectory()
        let script = try files.write("tampered-invitation.py", Self.invitationScript)
        let markers = files.path
        let invitationFile = files.path + "/help.orainvite"
        let made = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: ["invite", "--save", invitationFile, "--password-stdin", "--state-dir", setup.state],
            standardInput: "correct horse battery\n")
        #expect(made.status == 0, "\(made.standardError)")
        let invitation = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: invitationFile)))
        let id = try #require(((invitation as? [String: Any])?["invitation"] as? [String: Any])?["id"] as? String)

        let (socketPort, relayPort) = (try Network.freePort(), try Network.freePort())
        try Self.pointAgent(of: setup, at: socketPort)
        let server = try ChildProcess(
            try ScreenTests.testPython(),
            arguments: [script, "ws-0101", "\(socketPort)", "\(relayPort)", markers, id.lowercased()])
        defer { server.send(SIGKILL) }
        func marked(_ name: String) -> Bool { FileManager.default.fileExists(atPath: markers + "/" + name) }
        #expect(try await eventually { marked("listening") }, "\(server.standardErrorSoFar)")

        let agent = try setup.startAgent()
        defer { agent.send(SIGKILL) }
        #expect(
            try await eventually(within: .seconds(30)) { marked("done") },
            "server: \(server.standardErrorSoFar)\nagent: \(agent.standardErrorSoFar)")
        // The machine refused the made-up proof, and counted it.
        let decision = try String(contentsOfFile: markers + "/decision", encoding: .utf8)
        #expect(
            decision.contains(#""outcome":"refused""#) && decision.contains(#""reason":"wrong_password""#),
            "\(decision)")
        // Nobody was asked, nothing was shown: no question, no screen connection.
        #expect(!marked("asked"), "the agent took up an offer for an invitation it did not let through")
        #expect(!marked("screen"), "the agent opened the screen for a tampered server")
        #expect(!FileManager.default.fileExists(atPath: setup.files.path + "/questions.log"))
        #expect(
            agent.standardErrorSoFar.contains(
                "refusing an offer that names an invitation this machine did not let through"))
        let listed = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"), arguments: ["invitations", "--state-dir", setup.state])
        #expect(listed.standardOutput.contains("opened by uid=mallory,dc=example, 1 wrong password(s)"), "\(listed)")
    }
}
