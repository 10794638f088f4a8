import Foundation
import ORAClient
import ORATestSupport
import Testing

/// The console in Debian's headless Chromium (Playwright, `Tests/Browser/console.py`), against the real server,
/// agent, desktop, directory and database: what each person sees, and what another site cannot do.
@Suite("The console in a browser", .serialized)
struct ConsoleTests {
    /// A server with WS-0101 enrolled and online, its agent showing a test desktop; the person at it accepts.
    struct Machine {
        let desktop: TestDesktop
        let setup: OfferSetup
        let agent: ChildProcess
        var server: RunningServer { setup.server }

        static func make() async throws -> Machine {
            let desktop = try await TestDesktop()
            let setup = try await OfferSetup.make(enrolling: "WS-0101")
            let agent = try setup.startAgent("--display", desktop.display)
            try await waitUntilOnline("ws-0101", server: setup.server, token: try await setup.server.token("lena.wolf"))
            return Machine(desktop: desktop, setup: setup, agent: agent)
        }

        func stop() {
            agent.send(SIGKILL)
        }
    }

    /// Runs a flow of `console.py` and reads the JSON it prints.
    static func browse(_ flow: String, _ arguments: String...) async throws -> [String: Any] {
        guard let python = ProcessInfo.processInfo.environment["ORA_TEST_PYTHON"] else {
            throw TestSetupError("ORA_TEST_PYTHON is not set; run the tests with Deploy/dev/test")
        }
        let script = SourceTree.root + "/Tests/Browser/console.py"
        let result = await ChildProcess.runAsync(python, arguments: [script, flow] + arguments)
        guard result.status == 0 else { throw TestSetupError("console.py \(flow) failed: \(result.standardError)") }
        let last = result.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(last)")
    }

    @Test("a helper logs in, finds the machine, offers help, sees the screen, gets control and ends with confirmation")
    func helpdesk() async throws {
        let machine = try await Machine.make()
        defer { machine.stop() }
        let server = machine.server
        // Others to search among: a workstation, a laptop and a kiosk, enrolled but offline.
        try await machine.setup.enroll(["WS-0201", "LT-0042", "KIOSK-LOBBY1"])
        // The pages' screenshots; Docs/Console.md shows them (ORA_SCREENSHOTS=Docs/images/console keeps them).
        let temporary = try TemporaryDirectory()
        let shots = ProcessInfo.processInfo.environment["ORA_SCREENSHOTS"] ?? temporary.path
        let shown: [String: Any]
        do {
            shown = try await Self.browse("helpdesk", server.base, shots)
        } catch {
            // What the machine was asked and what the agent and the server said, to tell where it stopped.
            let questions = (try? String(contentsOfFile: machine.setup.files.path + "/questions.log", encoding: .utf8))
            let recorded =
                (try? await server.sql("SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events")) ?? "?"
            let agentLog = "audit log: \(recorded)\n" + String(machine.agent.standardErrorSoFar.suffix(3000))
            let serverLog = String(server.process.standardErrorSoFar.suffix(6000))
            Issue.record(
                "questions asked at the machine:\n\(questions ?? "none")\nagent:\n\(agentLog)\nserver:\n\(serverLog)")
            throw error
        }

        #expect(shown["alerts"] as? [String] == [], "a text from elsewhere ran as a script")
        #expect(shown["login_address"] as? String == server.base + "/")
        #expect((shown["wrong_password"] as? String)?.isEmpty == false, "\(shown)")
        #expect(shown["who"] as? String == "Lena Wolf (lena.wolf)")
        #expect(shown["cookie_readable"] as? String == "", "the credential is readable by scripts")
        #expect(shown["storage"] as? String == "[0,0]", "the page keeps something in web storage")
        #expect(shown["listed"] as? [String] == ["kiosk-lobby1", "lt-0042", "ws-0101", "ws-0201"])
        #expect(shown["listed_count"] as? String == "4 machines")
        #expect(shown["in_workstations"] as? [String] == ["ws-0101", "ws-0201"])
        #expect(
            shown["ou_choices"] as? [String] == [
                "every OU", "Computers (4)", "Computers › Kiosks (1)", "Computers › Laptops (1)",
                "Computers › Workstations (2)",
            ])
        #expect(
            shown["ou_address"] as? String
                == "/machines?ou=ou%3DWorkstations%2Cou%3DComputers%2Cdc%3Dcorp%2Cdc%3Dexample")
        #expect(shown["found"] as? [String] == ["ws-0101"])
        #expect(shown["where"] as? String == "Computers › Workstations")
        #expect(shown["access"] as? String == "See and control")
        #expect((shown["explanation"] as? String)?.contains("tier2-control-workstations") == true, "\(shown)")
        #expect((shown["offer_policy"] as? String)?.hasPrefix("Policy: ") == true)
        #expect((shown["offer_refused"] as? String)?.contains("ticket") == true, "\(shown)")
        #expect((shown["session_address"] as? String)?.hasPrefix(server.base + "/sessions/") == true)
        #expect((shown["viewing_banner"] as? [String])?.first == "Viewing", "\(shown)")
        #expect(shown["reason_shown"] as? String == "<img src=x onerror=alert(1)> printer queue")
        #expect(shown["images_on_page"] as? Int == 0)
        #expect(shown["root_pixel"] as? [Int] == [0x33, 0x66, 0xcc, 255], "the desktop's pixels are not on the canvas")
        #expect(shown["seen_pixel"] as? [Int] == [0x33, 0x66, 0xcc], "the page does not show the desktop")
        #expect(shown["ctrl_alt_del_while_viewing"] as? Bool == false)
        // The person's machine answers with a program, not a session window: the page says it has none to report.
        #expect(
            shown["chat_person"] as? String == "The session window has not been reported on the machine yet.",
            "\(shown)")
        #expect(shown["chat_line"] as? String == "<img src=x onerror=alert(2)> Could you open Outlook, please?")
        #expect(shown["chat_name"] as? String == "You")
        #expect(shown["chat_images"] as? Int == 0)
        #expect(shown["chat_field_after_send"] as? String == "")
        #expect(
            shown["chat_refused"] as? String
                == "Not sent: a chat message is one line of text: character 4 is a control character (U+0007)",
            "\(shown)")
        #expect(shown["chat_field_after_refusal"] as? String == "one\u{7}bell")
        #expect(shown["control_banner"] as? String == "You have control")
        #expect(shown["ctrl_alt_del_while_controlling"] as? Bool == true)
        #expect(shown["frame_colour"] as? String == "rgb(185, 61, 7)")
        #expect(shown["ended_banner"] as? String == "Session ended You ended it.")
        #expect(shown["screen_after_end"] as? Bool == false)
        let mine = try #require(shown["my_sessions"] as? [String], "\(shown)")
        #expect(mine.first == "ws-0101" && mine.dropFirst().first == "Session ended You ended it.", "\(mine)")
        #expect(shown["after_logout"] as? String == "You logged out.")
        #expect(shown["me_after_logout"] as? Int == 401)
        #expect(shown["tier1_access"] as? String == "See the screen")
        #expect(shown["tier1_control_choice"] as? Bool == false)

        // The audit log tells the same story as the page.
        let address = try #require(shown["session_address"] as? String)
        let id = String(address.split(separator: "/").last ?? "")
        let events = try await auditEvents(of: id, on: server)
        #expect(
            events == [
                "offer.requested", "offer.delivered", "consent.granted", "session.started", "screen.opened",
                "chat.message", "control.requested", "control.granted", "session.ended", "screen.closed",
            ], "\(events)")
        for name in [
            "login", "machines", "offer", "session-viewing", "session-chat", "session-control", "session-end",
            "sessions",
        ] {
            #expect(FileManager.default.fileExists(atPath: shots + "/\(name).png"), "\(name).png")
        }

        // The security team reads the same story in the audit log.
        let audited = try await Self.browse("security", server.base, shots, id)
        #expect(audited["helper_sees_audit"] as? Bool == false)
        #expect(audited["bars"] as? Int == 1, "one day of sessions: \(audited)")
        #expect((audited["top_operators"] as? [String])?.first?.hasPrefix("lena.wolf") == true, "\(audited)")
        #expect(
            audited["consent_rate"] as? String
                == "Answers of the people at the machines: 1 accepted, 0 declined, 0 unanswered — 0% declined or unanswered."
        )
        let sara = try await server.token("sara.klein")
        for wrong in ["zone=Not/AZone", "zone=UTC;DROP", "since=2026-01-01&until=2025-01-01", "week=1"] {
            let refused = try await HTTP.get(server.base + "/api/v1/audit/statistics?" + wrong, token: sara)
            #expect(refused.status == 400 && refused.refusal?.error == "invalid_parameter", "\(wrong): \(refused.body)")
        }
        #expect(
            (audited["helper_audit_refusal"] as? String)?.contains("administrator or auditor") == true, "\(audited)")
        #expect(
            audited["filtered_events"] as? [String] == ["offer.delivered", "offer.requested", "offer.denied"],
            "\(audited)")
        #expect((audited["address"] as? String)?.contains("machine=ws-0101") == true)
        let rows = try #require(audited["session_rows"] as? [String])
        #expect(rows == events.reversed(), "the timeline is not the session's events, newest first")
        let summaries = try #require(audited["summaries"] as? [String])
        #expect(summaries.contains("lena.wolf offered to see and control ws-0101 (ticket INC0000001)"), "\(summaries)")
        #expect(summaries.contains("The person at ws-0101 accepted the offer (answer signed by the machine)"))
        #expect(audited["raw_json"] as? String == id)
        // The export holds exactly the filtered events: a header line, then one line each.
        let lines = try #require(audited["csv_lines"] as? [String])
        #expect(lines.first?.hasPrefix("sequence,time,event,code,outcome") == true)
        #expect(lines.count == rows.count + 1, "\(lines.count) lines for \(rows.count) events")
        #expect((audited["chain"] as? String)?.hasPrefix("Intact: ") == true, "\(audited)")
        #expect(audited["story_events"] as? [String] == events)
        let facts = try #require(audited["story_facts"] as? [String])
        #expect(facts.contains("Helper lena.wolf") && facts.contains("Outcome ended: lena.wolf ended it"), "\(facts)")

        // An administrator changes the policy (with the CLI), then reads the change in the console.
        let setup = machine.setup
        let changed = OfferFixtures.policy
            .replacingOccurrences(of: "max_duration: 1h", with: "max_duration: 30m")
            .replacingOccurrences(
                of: "targets: { ous: [\"ou=Workstations,ou=Computers,dc=corp,dc=example\"] }\n    allow: view",
                with: "targets: { ous: [\"ou=Workstations,ou=Computers,dc=corp,dc=example\"], machines: [PC-9] }\n"
                    + "    allow: view")
        #expect(changed.contains("PC-9"))
        _ = try setup.policies.write(
            "test.yaml", changed + "\n" + OfferFixtures.configuration.components(separatedBy: "agents:")[0])
        let applied = await setup.admin.run(
            "policy", "apply", setup.policies.path, "--comment", "kiosk test machine", "--yes")
        #expect(applied.status == 0, "\(applied.standardError)")
        // A comparison names what it needs and which version does not exist.
        let peter = try await server.token("peter.schmidt")
        for (query, status, error) in [
            ("from=1", 400, "invalid_request"), ("from=x&to=2", 400, "invalid_request"),
            ("from=1&to=99", 404, "unknown_version"),
        ] {
            let answer = try await HTTP.get(server.base + "/api/v1/policy/diff?" + query, token: peter)
            #expect(answer.status == UInt(status) && answer.refusal?.error == error, "\(query): \(answer.body)")
        }
        let administered = try await Self.browse("administrator", server.base, shots)
        #expect((administered["active"] as? String)?.hasPrefix("Version 2, applied by uid=peter.schmidt") == true)
        #expect(administered["versions"] as? [String] == ["2", "1"], "\(administered)")
        let diff = try #require(administered["diff"] as? [[Any]], "\(administered)")
        #expect(diff.count == 2, "\(diff)")
        #expect(diff.first?.first as? String == "tier2-control-workstations")
        #expect(diff.first?.last as? [String] == ["max_duration: 1h → 30m"], "\(diff)")
        #expect(diff.last?.last as? [String] == ["targets.machines: + pc-9"], "\(diff)")
        #expect(administered["explain_control"] as? [String] == ["false", "Denied"], "\(administered)")
        #expect(administered["explain_view"] as? String == "Allowed: see the screen")
        #expect((administered["revoked"] as? String)?.hasPrefix("Revoked") == true)
        #expect(
            try await server.sql("SELECT revoked_at IS NOT NULL FROM machines WHERE name = 'ws-0101'") == "t",
            "the console's revocation did not reach the register")
        #expect((administered["token"] as? String)?.hasPrefix("ora_enr_") == true)
        #expect((administered["command"] as? String)?.hasSuffix("--machine ws-0199") == true)
        // The new token, and the used ones of WS-0101 and of the three machines the helper searched among.
        #expect(administered["tokens_before"] as? [String] == ["good", "used", "used"], "\(administered)")
        #expect(administered["tokens_after"] as? [String] == ["revoked", "used", "used"], "\(administered)")
        // The revoked token enrolls nothing, and its revocation is in the audit log.
        let revokedToken = try #require(administered["token"] as? String)
        let refused = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "enroll", "--server", server.base, "--token", revokedToken, "--machine", "WS-0199", "--state-dir",
                setup.files.path + "/agent-ws-0199",
            ] + server.agentTrust)
        #expect(refused.status != 0 && refused.standardError.contains("not valid"), "\(refused.standardError)")
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'agent.token_revoked'") == "1")
    }

    @Test("a page of another origin on the same host can neither read nor use the operator's cookie")
    func crossSite() async throws {
        let machine = try await Machine.make()
        defer { machine.stop() }
        let server = machine.server
        let evilFiles = try TemporaryDirectory()
        _ = try evilFiles.write("index.html", "<!DOCTYPE html><title>another site</title>", permissions: 0o644)
        let port = try Network.freePort()
        // The same site as the server's (https://localhost), on another port: the browser sends the SameSite
        // cookie along, and only the server's own check of the page's origin stands in the way.
        let tls = try TestTLS.required()
        let evil = try ChildProcess(
            "/usr/bin/python3",
            arguments: [
                "-c",
                """
                import functools, http.server, ssl, sys
                handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
                server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(sys.argv[3], sys.argv[4])
                server.socket = context.wrap_socket(server.socket, server_side=True)
                server.serve_forever()
                """,
                "\(port)", evilFiles.path, tls.certificate, tls.key,
            ])
        defer { evil.send(SIGKILL) }
        let other = "https://localhost:\(port)"
        var serving = false
        for _ in 0..<100 where !serving {
            serving = (try? await HTTP.get(other + "/"))?.status == 200
            if !serving { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(serving, "the other site never served its page")
        let shown = try await Self.browse("cross-site", server.base, other)

        let attempts = try #require(shown["attempts"] as? [String: String], "\(shown)")
        #expect(attempts["read_me"] == "blocked", "the other page read an answer: \(attempts)")
        let answers = try #require(shown["server_answers"] as? [[Any]])
        func status(_ method: String, _ path: String) -> Int? {
            answers.first { $0[0] as? String == method && $0[1] as? String == path }?[2] as? Int
        }
        #expect(status("POST", "/api/v1/offers") == 403, "\(answers)")
        #expect(status("POST", "/api/v1/logout") == 403, "\(answers)")
        #expect(status("POST", "/api/v1/login/browser") == 403, "\(answers)")
        #expect(
            shown["still_logged_in"] as? String == "Lena Wolf (lena.wolf)", "the other page logged the operator out")
        let offers = try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'offer.requested'")
        #expect(offers == "0", "the other page offered help")
    }

    @Test("the console's page is never cached and names its files by version; they are cached, the rest is not served")
    func files() async throws {
        let server = try await RunningServer()
        for path in ["/", "/login", "/machines", "/sessions", "/sessions/\(UUID().uuidString.lowercased())"] {
            let page = try await HTTP.get(server.base + path)
            #expect(page.status == 200 && page.contentType == "text/html; charset=utf-8", "\(path)")
            #expect(page.headers["cache-control"] == "no-store", "\(path)")
            #expect(page.contentSecurityPolicy?.contains("script-src 'self';") == true, "\(path)")
            #expect(page.headers["x-frame-options"] == "DENY")
        }
        // Not a session id: the console's page, which says there is no such page, with the status saying it too.
        let notFound = try await HTTP.get(server.base + "/sessions/not-a-session")
        #expect(notFound.status == 404 && notFound.contentType == "text/html; charset=utf-8")
        let page = try await HTTP.get(server.base + "/")
        let script = try #require(page.body.firstMatch(of: /src="(\/console\/[0-9a-f]{16}\/)app\.js"/)?.1)
        let module = try await HTTP.get(server.base + script + "app.js")
        #expect(module.status == 200 && module.contentType == "text/javascript; charset=utf-8")
        #expect(module.headers["cache-control"] == "public, max-age=31536000, immutable")
        #expect(try await HTTP.get(server.base + script + "console.css").contentType == "text/css; charset=utf-8")
        #expect(try await HTTP.get(server.base + script + "index.html").status == 404)
        #expect(try await HTTP.get(server.base + "/console/0000000000000000/app.js").status == 404)

        let novnc = try await HTTP.get(server.base + "/novnc/core/rfb.js")
        #expect(novnc.status == 200)
        #expect(novnc.contentSecurityPolicy?.contains("default-src 'none'") == true, "\(novnc)")
        // noVNC's own pages, which connect wherever a link says and have no policy, are not served.
        for page in ["/novnc/vnc.html", "/novnc/vnc_lite.html", "/novnc/VNC.HTML", "/novnc/"] {
            #expect(try await HTTP.get(server.base + page).status == 404, "\(page)")
        }
        // Sent as written (an HTTP client would fold the dots away before the server saw them).
        let port = try #require(URL(string: server.base)?.port)
        for path in ["/novnc/../../../etc/passwd", "/console/\(script.split(separator: "/")[1])/../../etc/passwd"] {
            let escape = try await RelayPort.exchange(
                port: port, send: "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", tls: true)
            #expect(escape.hasPrefix("HTTP/1.1 4"), "\(escape.prefix(200))")
            #expect(!escape.contains("root:"))
        }
    }

    @Test(
        "the console's cookie: scripts cannot read it, only this server's pages may log in or change anything with it")
    func cookie() async throws {
        let server = try await RunningServer()
        let base = server.base
        let origin = base
        let elsewhere = "http://127.0.0.1:\(try Network.freePort())"
        let credentials = #"{"user": "lena.wolf", "password": "ora-demo"}"#
        func login(origin: String?) async throws -> HTTP.Answer {
            try await HTTP.send(
                "POST", base + "/api/v1/login/browser", body: credentials,
                headers: origin.map { ["Origin": $0] } ?? [:])
        }
        for wrong in [nil, elsewhere, "null", base + "/page"] {
            let refused = try await login(origin: wrong)
            #expect(
                refused.status == 403 && refused.refusal?.error == "cross_site_request", "\(String(describing: wrong))")
            #expect(refused.headers["set-cookie"] == nil)
        }
        let answer = try await login(origin: origin)
        #expect(answer.status == 200, "\(answer.body)")
        #expect(!answer.body.contains("ora_op_"), "the token is in the answer")
        #expect(answer.json(Schemas.BrowserLoginResult.self)?._operator.account == "lena.wolf")
        let setCookie = try #require(answer.headers["set-cookie"])
        let cookie = try #require(setCookie.firstMatch(of: /^ora_session=(ora_op_[A-Za-z0-9_-]{43});/)?.1)
        // Secure: the server has TLS of its own (over plain HTTP on loopback it would not be, or the browser would
        // drop it; BehindProxyTests).
        for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
            #expect(setCookie.contains("; \(attribute)"), "\(setCookie)")
        }
        let withCookie = ["Cookie": "ora_session=\(cookie)"]

        // Reading needs no Origin; changing does.
        let me = try await HTTP.send("GET", base + "/api/v1/me", headers: withCookie)
        #expect(me.json(Schemas.Identity.self)?._operator.account == "lena.wolf")
        let offer = #"{"machine": "ws-0101", "mode": "view"}"#
        for wrong in [nil, elsewhere] {
            var headers = withCookie
            headers["Origin"] = wrong
            let refused = try await HTTP.send("POST", base + "/api/v1/offers", body: offer, headers: headers)
            #expect(refused.status == 403 && refused.refusal?.error == "cross_site_request", "\(refused.body)")
        }
        // From the server's own page the request is the operator's (here: no such machine is enrolled).
        let sameSite = try await HTTP.send(
            "POST", base + "/api/v1/offers", body: offer, headers: withCookie.merging(["Origin": origin]) { $1 })
        #expect(sameSite.refusal?.error == "unknown_machine", "\(sameSite.body)")
        // A bearer token is not a browser's credential: no Origin is needed with it.
        let token = try await server.token("lena.wolf")
        #expect(
            try await HTTP.post(base + "/api/v1/offers", json: offer, token: token).refusal?.error == "unknown_machine")

        // Logging out ends the session and tells the browser to forget the cookie.
        let refusedLogout = try await HTTP.send("POST", base + "/api/v1/logout", headers: withCookie)
        #expect(refusedLogout.status == 403)
        let logout = try await HTTP.send(
            "POST", base + "/api/v1/logout", headers: withCookie.merging(["Origin": origin]) { $1 })
        #expect(logout.status == 204)
        #expect(logout.headers["set-cookie"]?.hasPrefix("ora_session=; Path=/; Max-Age=0") == true, "\(logout)")
        #expect(try await HTTP.send("GET", base + "/api/v1/me", headers: withCookie).status == 401)
    }

    @Test("ora open: a one-time link logs the browser in on the session's page; used, expired or refused, it fails")
    func loginLink() async throws {
        let server = try await RunningServer(extra: OfferFixtures.configuration)
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: SourceTree.binary("ora"))
        let id = UUID().uuidString.lowercased()
        let opened = await lena.run("open", id, "--print")
        #expect(opened.status == 0, "\(opened.standardError)")
        let link = try #require(opened.standardOutput.split(separator: "\n").last.map(String.init))
        #expect(link.hasPrefix(server.base + "/login/link#ora_link_"), "\(opened.standardOutput)")
        #expect(await lena.run("open", "not-a-session").status == 64)

        let peter = try await server.token("peter.schmidt")
        let shown = try await Self.browse("login-link", link, peter)
        #expect(shown["address"] as? String == server.base + "/sessions/\(id)", "the code stayed in the address")
        #expect(shown["who"] as? String == "Lena Wolf (lena.wolf)")
        #expect(shown["state"] as? String == "No such session")
        #expect(shown["second_address"] as? String == server.base + "/login")
        #expect((shown["second_notice"] as? String)?.contains("was used already") == true, "\(shown)")
        #expect(shown["after_revocation"] as? String == "Your session has ended. Log in again to continue.")
        #expect(
            try await server.sql(
                "SELECT details->>'from_session' IS NOT NULL FROM audit_events "
                    + "WHERE event = 'operator.login' AND details->>'method' = 'link'") == "t")

        // The API: a link opens a console page and nothing else, only from a page of this server, once.
        let token = try await server.token("lena.wolf")
        let links = server.base + "/api/v1/login/links"
        let elsewhere = try await HTTP.post(links, json: #"{"target": "https://evil.example/"}"#, token: token)
        #expect(elsewhere.status == 400 && elsewhere.refusal?.error == "invalid_request")
        let made = try await HTTP.post(links, json: "{}", token: token)
        #expect(made.status == 201, "\(made.body)")
        let path = try #require(made.json(Schemas.LoginLink.self)?.path)
        let code = String(path.dropFirst("/login/link#".count))
        let use = #"{"code": "\#(code)"}"#
        let foreign = try await HTTP.send(
            "POST", server.base + "/api/v1/login/link", body: use, headers: ["Origin": "http://127.0.0.1:1"])
        #expect(foreign.status == 403, "a page of another origin used the link")
        let used = try await HTTP.send(
            "POST", server.base + "/api/v1/login/link", body: use, headers: ["Origin": server.base])
        #expect(used.status == 200, "\(used.body)")
        #expect(used.json(Schemas.BrowserLoginResult.self)?.target == "/")
        #expect(used.headers["set-cookie"]?.hasPrefix("ora_session=ora_op_") == true)
        let again = try await HTTP.send(
            "POST", server.base + "/api/v1/login/link", body: use, headers: ["Origin": server.base])
        #expect(again.status == 401 && again.refusal?.error == "invalid_login_link")
        // A link of a session that has ended since does not log anyone in.
        let late = try #require(try await HTTP.post(links, json: "{}", token: token).json(Schemas.LoginLink.self))
        #expect(try await HTTP.post(server.base + "/api/v1/logout", token: token).status == 204)
        let ended = try await HTTP.send(
            "POST", server.base + "/api/v1/login/link",
            body: #"{"code": "\#(late.path.dropFirst("/login/link#".count))"}"#, headers: ["Origin": server.base])
        #expect(ended.refusal?.error == "invalid_login_link")
    }

    @Test("a console session ends after its idle timeout without use, and use keeps it; a bearer token has none")
    func idleTimeout() async throws {
        let server = try await RunningServer(extra: "sessions: {console_idle_timeout: 3s}")
        let login = try await HTTP.send(
            "POST", server.base + "/api/v1/login/browser", body: #"{"user": "lena.wolf", "password": "ora-demo"}"#,
            headers: ["Origin": server.base])
        let setCookie = try #require(login.headers["set-cookie"], "\(login.body)")
        let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))
        let token = try await server.token("lena.wolf")
        func me(byCookie: Bool) async throws -> UInt {
            try await HTTP.send(
                "GET", server.base + "/api/v1/me", token: byCookie ? nil : token,
                headers: byCookie ? ["Cookie": cookie] : [:]
            ).status
        }
        // Used every second, it lives past its idle timeout.
        for _ in 0..<5 {
            #expect(try await me(byCookie: true) == 200)
            try await Task.sleep(for: .seconds(1))
        }
        // Unused for longer than that, it has ended; the bearer token, as old, has not.
        try await Task.sleep(for: .seconds(4))
        #expect(try await me(byCookie: true) == 401)
        #expect(try await me(byCookie: false) == 200)
    }

    @Test("a machine whose display cannot be shown: the session goes on, and the page says why it shows no screen")
    func noScreen() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        // A display no X server answers on.
        let agent = try setup.startAgent("--display", ":\(Int.random(in: 900...999))")
        defer { agent.send(SIGKILL) }
        try await waitUntilOnline("ws-0101", server: setup.server, token: try await setup.server.token("lena.wolf"))
        let shown = try await Self.browse("no-screen", setup.server.base)
        #expect(shown["banner"] as? String == "Viewing")
        // The machine's own reason, as its agent said it in RFB's words.
        #expect(
            (shown["problem"] as? String)?.hasPrefix(
                "The machine cannot show its screen: the machine's screen program (x11vnc on display :") == true,
            "\(shown)")
        #expect(
            (shown["problem"] as? String)?.hasSuffix(
                "ended with status 1 before showing the screen: it may have no display it can open (an X11 session, "
                    + "its X authority); `ora-agent doctor` on the machine says what is wrong. The session goes on; "
                    + "you can try again.") == true,
            "\(shown)")
        #expect(shown["reconnect"] as? Bool == true)
        #expect((shown["problem_again"] as? String)?.isEmpty == false)
    }

    @Test("the queue: two helpers see a request at once; one takes it, the other sees who; the password opens it")
    func queue() async throws {
        let machine = try await Machine.make()
        defer { machine.stop() }
        let server = machine.server
        let temporary = try TemporaryDirectory()
        let shots = ProcessInfo.processInfo.environment["ORA_SCREENSHOTS"] ?? temporary.path
        let shown = try await Self.browse(
            "queue", server.base, shots, SourceTree.binary("ora-agent"), machine.setup.state,
            InvitationTests.password)
        #expect(shown["empty"] as? String == "Nobody is waiting. New requests appear here at once.")
        #expect(
            (shown["sent"] as? String)?.contains("Helpers who may help this machine: 2 online now.") == true,
            "\(shown)")
        #expect(shown["machine"] as? String == "WS-0101")
        // Shown as text: the markup the person typed is not markup on the helper's page.
        #expect(shown["message"] as? String == "Outlook <b>keeps</b> asking for my password")
        #expect(shown["markup_in_message"] as? Bool == false)
        #expect((shown["hannah_sees"] as? String)?.contains("Taken by Lena Wolf at") == true, "\(shown)")
        #expect((shown["wrong"] as? String)?.contains("wrong password; 4 tries left") == true, "\(shown)")
        #expect(shown["banner"] as? String == "Viewing", "\(shown)")
        let session = try #require((shown["session_address"] as? String)?.components(separatedBy: "/sessions/").last)
        #expect(
            try await auditEvents(of: session, on: server).prefix(2) == ["invitation.opened", "invitation.taken"])
        #expect(
            try await server.sql(
                "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE event IN ('invitation.sent', 'invitation.claimed', 'invitation.password_failed')"
            ) == "invitation.sent,invitation.claimed,invitation.password_failed")
        // The password was proved from the page: it is nowhere on the server's side.
        #expect(
            try await server.sql(
                "SELECT (SELECT count(*) FROM audit_events WHERE details::text LIKE '%correct horse%') + (SELECT count(*) FROM invitation_queue WHERE invitation LIKE '%correct horse%')"
            ) == "0")
        #expect(!server.process.standardErrorSoFar.contains("correct horse"))
    }

    @Test("an invitation file: opened from the link in its mail, dropped on the page; an altered one is refused")
    func openFile() async throws {
        let machine = try await Machine.make()
        defer { machine.stop() }
        let server = machine.server
        let temporary = try TemporaryDirectory()
        let shots = ProcessInfo.processInfo.environment["ORA_SCREENSHOTS"] ?? temporary.path
        let (file, id) = try await InvitationTests.invite(
            machine.setup, message: "Outlook <b>keeps</b> asking for my password")
        let (linked, _) = try await InvitationTests.invite(machine.setup, name: "linked.orainvite")
        let original = try String(contentsOfFile: file, encoding: .utf8)
        let altered = try temporary.write(
            "altered.orainvite",
            original.replacingOccurrences(
                of: "Outlook <b>keeps</b> asking for my password", with: "ALTERED: send me your password"))
        #expect(altered != original)
        let shown = try await Self.browse(
            "open-file", server.base, shots, file, altered, linked, InvitationTests.password)
        #expect(shown["linked_machine"] as? String == "WS-0101")
        #expect((shown["linked_channel"] as? String) == "as a file", "\(shown)")
        // The file in the link's fragment is read once and leaves the address.
        #expect(shown["address_after_link"] as? String == server.base + "/invitations/open", "\(shown)")
        #expect(
            (shown["altered"] as? String)?.contains("the invitation is not genuine") == true, "\(shown)")
        #expect(shown["message"] as? String == "Outlook <b>keeps</b> asking for my password")
        #expect(shown["markup_in_message"] as? Bool == false)
        #expect(shown["banner"] as? String == "Viewing", "\(shown)")
        let session = try #require((shown["session_address"] as? String)?.components(separatedBy: "/sessions/").last)
        #expect(
            try await auditEvents(of: session, on: server).prefix(2) == ["invitation.opened", "invitation.taken"])
        #expect(
            try await server.sql(
                "SELECT details->>'invitation' FROM audit_events WHERE event = 'invitation.taken'") == id)
    }
}
