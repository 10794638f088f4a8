import Foundation
import ORAClient
import ORATestSupport
import Testing

/// The screen, with real parts: an Xvfb display with a known picture, `x11vnc -inetd` started by the agent for
/// each viewer, `ora connect` as the helper's local port, and vncdotool (a real RFB client) as the viewer. A window
/// on the display (`xev`) records every input it gets.
@Suite("The screen relayed to the helper")
struct ScreenTests {
    /// The root window's colour, and the point the input is aimed at (inside the `xev` window, which is white).
    static let rootColour = [0x33, 0x66, 0xcc]
    static let windowPoint = (x: 250, y: 170)

    /// A VNC viewer built on vncdotool: `capture` prints the size and two pixels as JSON; `input` moves the
    /// pointer onto the window, clicks and types `a`.
    static let viewerScript = """
        import json, sys
        from vncdotool import api
        port, action = sys.argv[1], sys.argv[2]
        client = api.connect("127.0.0.1::" + port, timeout=20)
        try:
            client.refreshScreen()
            if action == "capture":
                image = client.screen.convert("RGB")
                print(json.dumps({"size": list(image.size), "root": list(image.getpixel((10, 10))),
                                  "window": list(image.getpixel((250, 170)))}))
            else:
                client.mouseMove(250, 170)
                client.mousePress(1)
                client.keyPress("a")
                client.refreshScreen()
                print("sent")
        finally:
            client.disconnect()
            api.shutdown()
        """

    /// Runs the viewer against `port`.
    func viewer(_ action: String, port: Int, script: String) async throws -> String {
        try await python(script, "\(port)", action)
    }

    /// The python of the tests' virtual environment (`Deploy/dev/python-tools`).
    static func testPython() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["ORA_TEST_PYTHON"] else {
            throw TestSetupError("ORA_TEST_PYTHON is not set; run the tests with Deploy/dev/test")
        }
        return python
    }

    /// Runs a Python script of the tests' virtual environment.
    func python(_ script: String, _ arguments: String...) async throws -> String {
        let result = await ChildProcess.runAsync(try Self.testPython(), arguments: [script] + arguments)
        guard result.status == 0 else {
            throw TestSetupError("\(script) \(arguments) failed: \(result.standardError)")
        }
        return result.standardOutput
    }

    /// A viewer that expects a refusal: prints the server's version and the reason it gives, or fails.
    static let refusalReaderScript = """
        import socket, struct, sys
        connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
        def read(count):
            data = b""
            while len(data) < count:
                chunk = connection.recv(count - len(data))
                if not chunk:
                    sys.exit("the connection closed after %r" % data)
                data += chunk
            return data
        version = read(12)
        connection.sendall(b"RFB 003.008\\n")
        types = read(1)[0]
        if types:
            sys.exit("%d security types offered: the screen was not refused" % types)
        length = struct.unpack(">I", read(4))[0]
        print(version.decode().strip() + "|" + read(length).decode())
        """

    @Test("a screen program that fails, or cannot start: the helper's viewer is told why and the session goes on")
    func screenCannotStart() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let server = setup.server
        let files = try TemporaryDirectory()
        let reader = try files.write("refusal.py", Self.refusalReaderScript)
        let failing = try files.write("no-display", "#!/bin/sh\nexit 1\n", permissions: 0o755)
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let lenaToken = try await server.token("lena.wolf")
        for (program, reason) in [
            (
                failing,
                "the machine's screen program (no-display) ended with status 1 before showing the screen: it may have "
                    + "no display it can open (an X11 session, its X authority); `ora-agent doctor` on the machine "
                    + "says what is wrong"
            ),
            (
                "/nonexistent/vnc",
                "the machine could not start its screen program (vnc): cannot start the screen backend "
                    + "/nonexistent/vnc: "
            ),
        ] {
            let agent = try setup.startAgent("--screen-command", program)
            defer { agent.send(SIGKILL) }
            try await waitUntilOnline("ws-0101", server: server, token: lenaToken)
            let offered = await lena.run("offer", "ws-0101", "--ticket", "INC0000001", "--wait")
            #expect(offered.status == 0, "\(offered.standardError)")
            let id = sessionID(in: offered.standardOutput)
            let port = try Network.freePort()
            let connect = try ChildProcess(
                SourceTree.binary("ora"), arguments: ["connect", id, "--listen", "127.0.0.1:\(port)"],
                environment: lena.environment)
            defer { connect.send(SIGKILL) }
            #expect(try await eventually { connect.standardOutputSoFar.contains("point a VNC viewer") })

            let told = await ChildProcess.runAsync(try Self.testPython(), arguments: [reader, "\(port)"])
            #expect(
                told.standardOutput.hasPrefix("RFB 003.008|" + reason),
                "\(told.standardOutput) \(told.standardError)\nagent: \(agent.standardErrorSoFar.suffix(2000))")
            // Only the screen failed: the session goes on, and the helper may try again.
            let now = try await HTTP.get(server.base + "/api/v1/sessions/\(id)", token: lenaToken)
            #expect(now.json(Schemas.Session.self)?.state == .viewing, "\(now.body)")
            #expect(
                try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: lenaToken).status == 200)
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .ended }
            agent.send(SIGKILL)
            _ = agent.waitUntilExit()
            // Offline before the next agent of the same machine connects, so the next offer reaches that one.
            #expect(
                try await eventually {
                    let machines = try await HTTP.get(
                        server.base + "/api/v1/machines?q=ws-0101&online=true", token: lenaToken)
                    return !machines.body.contains(#""name":"ws-0101","online":true"#)
                })
        }
    }

    @Test("the helper sees the desktop through ora connect; input reaches it only while the novice grants control")
    func viewAndControl() async throws {
        let desktop = try await TestDesktop()
        let setup = try await OfferSetup.make(enrolling: "WS-0201")
        let server = setup.server
        let terminal = try await Tmux.start(
            "\(SourceTree.binary("ora-agent")) run --consent terminal --state-dir \(setup.state) --display \(desktop.display)"
        )
        var connect: ChildProcess?
        do {
            let files = try TemporaryDirectory()
            let script = try files.write("viewer.py", Self.viewerScript)
            let lenaToken = try await server.token("lena.wolf")
            try await waitUntilOnline("ws-0201", server: server, token: lenaToken)
            let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
            let offered = await lena.run("offer", "ws-0201", "--control", "--ticket", "INC0000001")
            #expect(offered.status == 0, "\(offered.standardError)")
            let id = sessionID(in: offered.standardOutput)
            _ = try await terminal.waitFor("Allow? [y/N]")
            try await terminal.type("y", "Enter")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }

            // `ora connect` opens a local port for any VNC viewer.
            let port = try Network.freePort()
            let started = try ChildProcess(
                SourceTree.binary("ora"), arguments: ["connect", id, "--listen", "127.0.0.1:\(port)"],
                environment: lena.environment)
            connect = started
            #expect(try await eventually { started.standardOutputSoFar.contains("point a VNC viewer") })

            // The known picture arrives: the blue root window and the white window on it.
            let captured = try await viewer("capture", port: port, script: script)
            let pixels = try #require(
                try JSONSerialization.jsonObject(with: Data(captured.utf8)) as? [String: [Int]], "\(captured)")
            #expect(pixels["size"] == [320, 240])
            #expect(pixels["root"] == Self.rootColour)
            #expect(pixels["window"] == [255, 255, 255])
            // The relay's metrics saw the screen's bytes: a 320×240 picture at least, and the viewer's messages.
            let metrics = try await MetricsScrape(server)
            #expect(metrics["ora_relay_bytes_total{direction=\"to_viewer\"}"] ?? 0 > 320 * 240)
            #expect(metrics["ora_relay_bytes_total{direction=\"from_viewer\"}"] ?? 0 > 0)
            // The person at the machine is told, where they answered the offer: their pane said so while the viewer
            // was open, and says so no more.
            _ = try await terminal.waitFor("Lena Wolf sees your screen")
            _ = try await terminal.waitUntilShowing("Lena Wolf may see your screen (not looking now)")

            // View-only: the pointer and key events are dropped; the window records nothing.
            _ = try await viewer("input", port: port, script: script)
            try await Task.sleep(for: .seconds(1))
            #expect(desktop.inputs.isEmpty, "\(desktop.inputs)")
            #expect(
                try await eventually {
                    try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'input.blocked'") == "1"
                })

            // Control granted: the same input arrives.
            #expect(await lena.run("session", "control", id).status == 0)
            _ = try await terminal.waitFor("asks to use your keyboard and mouse")
            try await terminal.type("y", "Enter")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .controlling }
            _ = try await viewer("input", port: port, script: script)
            #expect(try await eventually { desktop.inputs.contains { $0.hasPrefix("KeyPress") } }, "\(desktop.inputs)")
            #expect(desktop.inputs.contains { $0.hasPrefix("ButtonPress") }, "\(desktop.inputs)")

            // The novice takes control back with ESC: input stops arriving again.
            _ = try await terminal.waitUntilShowing("Esc or Ctrl+C: stop control")
            try await terminal.type("Escape")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }
            let before = desktop.inputs.count
            _ = try await viewer("input", port: port, script: script)
            try await Task.sleep(for: .seconds(1))
            #expect(desktop.inputs.count == before, "\(desktop.inputs)")

            // The session ends: `ora connect` stops, and the record accounts for the screen.
            #expect(await lena.run("session", "end", id).status == 0)
            let finished = await started.exit()
            #expect(finished.standardOutput.contains("the session has ended"), "\(finished.standardOutput)")
            let screen = try await server.sql(
                "SELECT details->'screen' FROM audit_events WHERE event = 'session.ended' AND session_id = '\(id)'")
            let totals = try #require(
                try JSONSerialization.jsonObject(with: Data(screen.utf8)) as? [String: Int], "\(screen)")
            #expect(totals["connections"] == 4, "\(totals)")
            #expect((totals["bytes_to_viewer"] ?? 0) > 320 * 240 * 4, "\(totals)")
            #expect((totals["bytes_from_viewer"] ?? 0) > 0, "\(totals)")
            #expect((totals["input_dropped"] ?? 0) >= 4, "\(totals)")
            #expect(
                try await server.sql(
                    "SELECT count(*) FROM audit_events WHERE event = 'screen.opened' AND session_id = '\(id)'") == "4")
            #expect(
                try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'input.blocked'") == "1",
                "recorded once per session")
            let auditor = try await server.token("sara.klein")
            let verified = try await HTTP.get(server.base + "/api/v1/audit/verify", token: auditor)
            #expect(verified.json(Schemas.AuditVerificationReport.self)?.intact == true, "\(verified.body)")
        } catch {
            connect?.send(SIGKILL)
            let log = "agent terminal:\n\(await terminal.screen())\nora connect: \(connect?.standardErrorSoFar ?? "")"
            Issue.record("\(log)")
            await terminal.close()
            throw error
        }
        connect?.send(SIGKILL)
        await terminal.close()
    }

    /// A raw RFB viewer that reads every message the desktop sends, prints `ready` after the first screen update,
    /// and, once the file argv[2] exists, goes on reading for 4 seconds; then prints the clipboard texts it was sent
    /// (ServerCutText), as JSON.
    static let clipboardViewerScript = #"""
        import json, os, socket, struct, sys, time
        port, go = int(sys.argv[1]), sys.argv[2]
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        def recv(n):
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    raise EOFError("the connection closed")
                data += chunk
            return data
        recv(12); s.sendall(b"RFB 003.008\n")
        recv(recv(1)[0]); s.sendall(b"\x01"); recv(4); s.sendall(b"\x01")
        width, height = struct.unpack(">HH", recv(4)); pixel = recv(16); recv(struct.unpack(">I", recv(4))[0])
        depth = pixel[0] // 8
        s.sendall(struct.pack(">BBHi", 2, 0, 1, 0))
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        cuts, ready, until = [], False, None
        while until is None or time.time() < until:
            if ready and until is None and os.path.exists(go):
                until = time.time() + 4
            s.settimeout(0.3)
            try:
                kind = recv(1)[0]
            except socket.timeout:
                continue
            s.settimeout(20)
            if kind == 0:
                recv(1)
                for _ in range(struct.unpack(">H", recv(2))[0]):
                    x, y, w, h, encoding = struct.unpack(">HHHHi", recv(12))
                    if encoding == 0:
                        recv(w * h * depth)
                if not ready:
                    ready = True
                    print("ready", flush=True)
                s.sendall(struct.pack(">BBHHHH", 3, 1, 0, 0, width, height))
            elif kind == 1:
                recv(3); recv(struct.unpack(">H", recv(2))[0] * 6)
            elif kind == 2:
                pass
            elif kind == 3:
                recv(3); cuts.append(recv(struct.unpack(">I", recv(4))[0]).decode("latin-1"))
            else:
                raise SystemExit("unexpected message %d" % kind)
        print(json.dumps({"cuts": cuts}), flush=True)
        """#

    /// Makes xclip own `selection` on the desktop with `text`; it stays in the background as the owner until the
    /// desktop goes. Every descriptor above 2 is closed first and its output goes nowhere, so the owner left behind
    /// holds none of the test's pipes (nor the one by which Foundation learns that a child ended).
    static func own(_ selection: String, on desktop: TestDesktop, text: String) async -> Bool {
        let result = await ChildProcess.runAsync(
            "/usr/bin/perl",
            arguments: [
                "-MPOSIX", "-e",
                "opendir(my $fds, '/proc/self/fd') or die qq($!); "
                    + "my @open = grep { /^[0-9]+$/ && $_ > 2 } readdir($fds); closedir($fds); "
                    + "POSIX::close($_) for @open; exec @ARGV or die qq(exec: $!)",
                "--", "/bin/sh", "-c",
                "printf %s \"$1\" | /usr/bin/xclip -display \"$2\" -selection \"$3\" -i >/dev/null 2>&1", "own",
                text, desktop.display, selection,
            ])
        return result.status == 0
    }

    @Test("the machine's clipboard never reaches a view-only helper, whoever owns it on the desktop")
    func clipboardNotShared() async throws {
        let desktop = try await TestDesktop()
        let offered = try await OfferedSession.make(desktop: desktop)
        defer { offered.stop() }
        let (server, hannah, id) = (offered.server, offered.hannah, offered.id)
        _ = try await session(id, on: server, token: hannah) { $0.state == .viewing }
        // Something secret is on the clipboard (and selected) before the helper looks...
        for selection in ["clipboard", "primary"] {
            #expect(await Self.own(selection, on: desktop, text: "secret-before-\(selection)"))
        }
        let files = try TemporaryDirectory()
        let script = try files.write("clipboard.py", Self.clipboardViewerScript)
        let hannahCLI = try await OperatorCLI(
            "hannah.fischer", server: server, ora: SourceTree.binary("ora"))
        let port = try Network.freePort()
        let connect = try ChildProcess(
            SourceTree.binary("ora"), arguments: ["connect", id, "--listen", "127.0.0.1:\(port)"],
            environment: hannahCLI.environment)
        defer { connect.send(SIGKILL) }
        #expect(try await eventually { connect.standardOutputSoFar.contains("point a VNC viewer") })
        let viewer = try ChildProcess(try Self.testPython(), arguments: [script, "\(port)", files.path + "/go"])
        defer { viewer.send(SIGKILL) }
        #expect(try await eventually { viewer.standardOutputSoFar.contains("ready") }, "\(viewer.standardErrorSoFar)")
        // ...and while the helper looks, it changes.
        for selection in ["clipboard", "primary"] {
            #expect(await Self.own(selection, on: desktop, text: "secret-during-\(selection)"))
        }
        try files.write("go", "")
        let finished = await viewer.exit(within: .seconds(30))
        #expect(finished.status == 0, "\(finished.standardError)")
        let report = finished.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        #expect(report == #"{"cuts": []}"#, "\(finished.standardOutput)")
    }

    /// A viewer that holds Ctrl and mouse button 1 down on the window, prints `held`, waits until the file argv[3]
    /// exists, asks for a screen update (any message from the viewer lets the agent act), prints `refreshed`, waits
    /// until the file argv[4] exists, and leaves.
    static let holdingViewerScript = """
        import os, sys, time
        from vncdotool import api
        port, go, leave = sys.argv[1], sys.argv[3], sys.argv[4]
        def wait_for(path):
            for _ in range(600):
                if os.path.exists(path): return
                time.sleep(0.1)
            raise SystemExit("never told to go on: " + path)
        client = api.connect("127.0.0.1::" + port, timeout=20)
        try:
            client.refreshScreen()
            client.mouseMove(250, 170)
            client.keyDown("ctrl")
            client.mouseDown(1)
            client.refreshScreen()
            print("held", flush=True)
            wait_for(go)
            client.refreshScreen()
            print("refreshed", flush=True)
            wait_for(leave)
        finally:
            client.disconnect()
            api.shutdown()
        """

    @Test("keys and buttons the helper holds down when the person takes control back are released on the desktop")
    func heldInputReleased() async throws {
        let desktop = try await TestDesktop()
        let setup = try await OfferSetup.make(enrolling: "WS-0202")
        let server = setup.server
        let terminal = try await Tmux.start(
            "\(SourceTree.binary("ora-agent")) run --consent terminal --state-dir \(setup.state) --display \(desktop.display)"
        )
        var processes: [ChildProcess] = []
        defer {
            for process in processes { process.send(SIGKILL) }
        }
        do {
            let files = try TemporaryDirectory()
            let script = try files.write("holding.py", Self.holdingViewerScript)
            let lenaToken = try await server.token("lena.wolf")
            try await waitUntilOnline("ws-0202", server: server, token: lenaToken)
            let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
            let offered = await lena.run("offer", "ws-0202", "--control", "--ticket", "INC0000001")
            let id = sessionID(in: offered.standardOutput)
            _ = try await terminal.waitFor("Allow? [y/N]")
            try await terminal.type("y", "Enter")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }
            #expect(await lena.run("session", "control", id).status == 0)
            _ = try await terminal.waitFor("asks to use your keyboard and mouse")
            try await terminal.type("y", "Enter")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .controlling }

            let port = try Network.freePort()
            let connect = try ChildProcess(
                SourceTree.binary("ora"), arguments: ["connect", id, "--listen", "127.0.0.1:\(port)"],
                environment: lena.environment)
            processes.append(connect)
            #expect(try await eventually { connect.standardOutputSoFar.contains("point a VNC viewer") })
            let go = files.path + "/go"
            let leave = files.path + "/leave"
            let viewer = try ChildProcess(try Self.testPython(), arguments: [script, "\(port)", "hold", go, leave])
            processes.append(viewer)
            #expect(
                try await eventually { viewer.standardOutputSoFar.contains("held") }, "\(viewer.standardErrorSoFar)")
            #expect(
                try await eventually {
                    desktop.keyAndButtonEvents.contains { $0.hasPrefix("KeyPress") }
                        && desktop.keyAndButtonEvents.contains { $0.hasPrefix("ButtonPress") }
                }, "\(desktop.keyAndButtonEvents)")
            #expect(
                !desktop.keyAndButtonEvents.contains { $0.hasPrefix("KeyRelease") || $0.hasPrefix("ButtonRelease") })

            // The person takes control back while Ctrl and the button are down.
            _ = try await terminal.waitUntilShowing("Esc or Ctrl+C: stop control")
            try await terminal.type("Escape")
            _ = try await session(id, on: server, token: lenaToken) { $0.state == .viewing }
            // The viewer is still connected and sends its next message: both are released, at once.
            try files.write("go", "")
            #expect(try await eventually { viewer.standardOutputSoFar.contains("refreshed") })
            #expect(
                try await eventually {
                    desktop.keyAndButtonEvents.contains { $0.hasPrefix("KeyRelease") }
                        && desktop.keyAndButtonEvents.contains { $0.hasPrefix("ButtonRelease") }
                }, "\(desktop.keyAndButtonEvents)")
            #expect(viewer.isRunning, "released while the viewer is still there, not by its leaving")
            let events = desktop.keyAndButtonEvents
            #expect(events.filter { $0.hasPrefix("KeyRelease") }.count == 1, "\(events)")
            #expect(events.filter { $0.hasPrefix("ButtonRelease") }.count == 1, "\(events)")
            try files.write("leave", "")
            _ = await viewer.exit()
        } catch {
            Issue.record("agent terminal:\n\(await terminal.screen())")
            await terminal.close()
            throw error
        }
        await terminal.close()
    }
}
