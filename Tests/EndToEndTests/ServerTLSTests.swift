import Foundation
import ORATestSupport
import Testing

/// The server's own TLS (`listen.tls`) with a throwaway CA made by openssl: HTTPS and TLS on the relay port, HSTS,
/// the agent verifying the server with the enrollment's CA file, and SIGHUP swapping the certificate without
/// dropping the agent's connection.
@Suite("The server's own TLS")
struct ServerTLSTests {
    /// Makes a CA and two server certificates it signed for 127.0.0.1 (serials 1001 and 1002), and a self-signed
    /// server certificate (`self.pem`).
    static let certificateScript = """
        set -e
        cd "$1"
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \\
            -days 2 -subj '/CN=ora test CA' 2>/dev/null
        for n in 1 2; do
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server$n.key \\
                -out server$n.csr -subj '/CN=127.0.0.1' 2>/dev/null
            openssl x509 -req -in server$n.csr -CA ca.pem -CAkey ca.key -set_serial 100$n -days 2 \\
                -extfile san.ext -out server$n.pem 2>/dev/null
        done
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout self.key -out self.pem \\
            -days 2 -subj '/CN=localhost' -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' 2>/dev/null
        """

    /// Runs `certificateScript` in `files`.
    static func makeCertificates(in files: TemporaryDirectory) async throws {
        let made = await ChildProcess.runAsync(
            "/bin/sh", arguments: ["-c", certificateScript, "certificates", files.path])
        guard made.status == 0 else { throw TestSetupError("openssl: \(made.standardError)") }
    }

    static func curl(_ arguments: String...) async -> ChildProcess.Result {
        await ChildProcess.runAsync(
            "/usr/bin/curl", arguments: ["-s", "--noproxy", "*", "--max-time", "10"] + arguments)
    }

    /// The serial of the certificate served on `port`, as openssl reads it (`serial=03E9`), or "" when none.
    static func servedSerial(port: Int, ca: String) async -> String {
        let shown = await ChildProcess.runAsync(
            "/bin/sh",
            arguments: [
                "-c",
                "openssl s_client -connect 127.0.0.1:\(port) -CAfile '\(ca)' -verify_return_error </dev/null "
                    + "2>/dev/null | openssl x509 -noout -serial",
            ])
        return shown.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// ora-server with TLS of its own from `certificate` and `key`, on a database of its own; killed, and its
    /// database dropped, when the test lets go of it (also when the test fails).
    final class TLSServer {
        let process: ChildProcess
        let port: Int
        let relay: Int
        let services: TestServices
        let database: String
        private let ownsDatabase: Bool

        /// Starts the server and waits until it answers over HTTPS verified with `ca`.
        /// - Parameter sharing: the database of another server, when this one is a second replica of it.
        init(
            certificate: String, key: String, ca: String, files: TemporaryDirectory, sharing: TLSServer? = nil
        ) async throws {
            services = try TestServices.fromEnvironment()
            ownsDatabase = sharing == nil
            if let sharing {
                database = sharing.database
            } else {
                database = try await services.createDatabase(prefix: "e2e")
            }
            (port, relay) = (try Network.freePort(), try Network.freePort())
            var yaml = ServerConfigurationFile(
                database: database, on: services, port: port, auditSigningKeyFile: services.auditSigningKeyFile
            ).yaml
            yaml = yaml.replacingOccurrences(
                of: "  port: \(port)\n",
                with:
                    "  port: \(port)\n  tls:\n    certificate_chain_file: \(certificate)\n    private_key_file: \(key)\n"
            )
            yaml = yaml.replacingOccurrences(of: "  relay_port: 0", with: "  relay_port: \(relay)")
            yaml += "\nroles:\n  administrators: [\"cn=RA Admins,ou=Groups,dc=corp,dc=example\"]\n"
            process = try ChildProcess(
                SourceTree.binary("ora-server"),
                arguments: ["--config", try files.write("ora-server-\(port).yaml", yaml)])
            let port = port
            let serving = try await eventually(within: .seconds(60)) {
                await ServerTLSTests.curl(
                    "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(port)/healthz"
                )
                .standardOutput == "200"
            }
            guard serving else { throw TestSetupError("the server did not serve HTTPS: \(process.standardErrorSoFar)") }
        }

        deinit {
            process.send(SIGKILL)
            _ = process.waitUntilExit()
            guard ownsDatabase else { return }
            let (services, database) = (services, database)
            Task { try? await services.dropDatabase(database) }
        }

        func sql(_ statement: String) async throws -> String {
            try await services.sql(statement, database: database)
        }
    }

    @Test("HTTPS and the relay's TLS with HSTS; the agent verifies the server; SIGHUP renews without dropping it")
    func ownTLS() async throws {
        let files = try TemporaryDirectory()
        try await Self.makeCertificates(in: files)
        let (ca, certificate, key) = (files.path + "/ca.pem", files.path + "/server.pem", files.path + "/server.key")
        try FileManager.default.copyItem(atPath: files.path + "/server1.pem", toPath: certificate)
        try FileManager.default.copyItem(atPath: files.path + "/server1.key", toPath: key)

        let tlsServer = try await TLSServer(certificate: certificate, key: key, ca: ca, files: files)
        let (server, port, relay) = (tlsServer.process, tlsServer.port, tlsServer.relay)
        let base = "https://127.0.0.1:\(port)"

        // HTTPS verified with the CA, and HSTS on the answers; without the CA, or in clear, nothing.
        let headers = await Self.curl("--cacert", ca, "-D", "-", "-o", "/dev/null", base + "/healthz")
        #expect(
            headers.standardOutput.lowercased().contains("strict-transport-security: max-age=31536000"),
            "\(headers.standardOutput)")
        #expect(await Self.curl(base + "/healthz").status == 60)
        #expect(await Self.curl("http://127.0.0.1:\(port)/healthz").status != 0)
        #expect(await Self.servedSerial(port: port, ca: ca) == "serial=03E9")
        #expect(await Self.servedSerial(port: relay, ca: ca) == "serial=03E9")

        // An agent enrolled with the CA file connects over TLS.
        let login = await Self.curl(
            "--cacert", ca, "-H", "Content-Type: application/json", "-d",
            #"{"user": "peter.schmidt", "password": "ora-demo"}"#, base + "/api/v1/login")
        let token = try #require(Self.field("token", in: login.standardOutput), "\(login.standardOutput)")
        // `ora` verifies the server with the CA file given at login, and keeps it for the other commands; the
        // system's CAs do not know this one. (Nor is it given the CA of the other tests' servers, `TestTLS`.)
        let home = try TemporaryDirectory()
        let environment = ["ORA_CONFIG_DIR": home.path, "HOME": home.path, "ORA_CA_FILE": ""]
        let cli = await ChildProcess.runAsync(
            SourceTree.binary("ora"),
            arguments: ["login", "--server", base, "--ca-file", ca, "--user", "peter.schmidt", "--password-stdin"],
            environment: environment, standardInput: "ora-demo\n")
        #expect(cli.status == 0, "\(cli.standardError)")
        let whoami = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["whoami"], environment: environment)
        #expect(whoami.standardOutput.hasPrefix("Peter Schmidt (peter.schmidt)"), "\(whoami.standardError)")
        let unverified = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["status", "--server", base],
            environment: ["HOME": home.path + "/x", "ORA_CA_FILE": ""])
        #expect(unverified.status == 3)
        #expect(unverified.standardError.hasPrefix("ora: error: cannot reach \(base): "), "\(unverified.standardError)")
        let missing = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["status", "--server", base, "--ca-file", files.path + "/none.pem"],
            environment: environment)
        #expect(missing.standardError.contains("cannot read the CA file \(files.path)/none.pem"))

        // The console's cookie over the server's own TLS is Secure: a browser never sends it in clear.
        let browser = await Self.curl(
            "--cacert", ca, "-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/json", "-H",
            "Origin: https://127.0.0.1:\(port)", "-d", #"{"user": "peter.schmidt", "password": "ora-demo"}"#,
            base + "/api/v1/login/browser")
        #expect(browser.standardOutput.contains("HttpOnly; SameSite=Strict; Secure\r\n"), "\(browser.standardOutput)")
        let created = await Self.curl(
            "--cacert", ca, "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(token)", "-d",
            #"{"machine": "WS-0101"}"#, base + "/api/v1/agents/tokens")
        let enrollment = try #require(Self.field("token", in: created.standardOutput), "\(created.standardOutput)")
        let state = files.path + "/agent"
        let enrolled = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "enroll", "--server", "https://localhost:\(port)", "--token", enrollment, "--machine", "WS-0101",
                "--ca-file", ca,
                "--state-dir", state,
            ])
        try #require(enrolled.status == 0, "\(enrolled.standardError)")
        let agent = try ChildProcess(
            SourceTree.binary("ora-agent"),
            arguments: [
                "run", "--consent", "command", "--consent-command", try OfferFixtures.consentScript(in: files),
                "--state-dir", state,
            ])
        defer { agent.send(SIGKILL) }
        func online() async -> Bool {
            await Self.curl(
                "--cacert", ca, "-H", "Authorization: Bearer \(token)", base + "/api/v1/machines?q=ws-0101&online=true"
            ).standardOutput.contains(#""name":"ws-0101","online":true"#)
        }
        #expect(try await eventually(within: .seconds(30)) { await online() }, "\(agent.standardErrorSoFar)")

        /// The SHA-256 of a certificate's public key, as openssl computes it.
        func keySHA256(_ file: String) async -> String {
            await ChildProcess.runAsync(
                "/bin/sh",
                arguments: [
                    "-c", "openssl x509 -pubkey -noout -in \"$1\" | openssl pkey -pubin -outform DER | sha256sum",
                    "key", file,
                ]
            ).standardOutput.prefix(64).lowercased()
        }
        // The other replicas are told the key this one's relay port shows.
        let published = "SELECT relay_key_sha256 FROM server_instances"
        #expect(try await tlsServer.sql(published) == (await keySHA256(files.path + "/server1.pem")))

        // Renewed: new connections get the new certificate on both ports; the agent's connection stays.
        try FileManager.default.removeItem(atPath: certificate)
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: files.path + "/server2.pem", toPath: certificate)
        try FileManager.default.copyItem(atPath: files.path + "/server2.key", toPath: key)
        server.send(SIGHUP)
        #expect(
            try await eventually { await Self.servedSerial(port: port, ca: ca) == "serial=03EA" },
            "\(server.standardErrorSoFar)")
        #expect(await Self.servedSerial(port: relay, ca: ca) == "serial=03EA")
        #expect(server.standardErrorSoFar.contains("TLS certificate and key read again; new connections get them"))
        // … and the other replicas the new key, at once.
        let renewed = await keySHA256(files.path + "/server2.pem")
        #expect(try await eventually(within: .seconds(3)) { try await tlsServer.sql(published) == renewed })
        #expect(await online())
        #expect(
            agent.standardErrorSoFar.components(separatedBy: "] connected").count == 2, "\(agent.standardErrorSoFar)")

        // A broken file: said in the log, and the previous certificate is still served.
        try files.write("server.pem", "not a certificate\n")
        server.send(SIGHUP)
        #expect(
            try await eventually {
                server.standardErrorSoFar.contains(
                    "TLS certificate and key not read again; the previous ones are still served")
            })
        #expect(await Self.servedSerial(port: port, ca: ca) == "serial=03EA")
    }

    @Test("pinned: given the server's own self-signed certificate, `ora` and the agent accept that server only")
    func pinned() async throws {
        let files = try TemporaryDirectory()
        try await Self.makeCertificates(in: files)
        let pin = files.path + "/self.pem"
        let server = try await TLSServer(certificate: pin, key: files.path + "/self.key", ca: pin, files: files)
        let base = "https://localhost:\(server.port)"
        let home = try TemporaryDirectory()
        let environment = ["ORA_CONFIG_DIR": home.path, "HOME": home.path, "ORA_CA_FILE": ""]
        func login(trusting file: String) async -> ChildProcess.Result {
            await ChildProcess.runAsync(
                SourceTree.binary("ora"),
                arguments: [
                    "login", "--server", base, "--ca-file", file, "--user", "peter.schmidt", "--password-stdin",
                ],
                environment: environment, standardInput: "ora-demo\n")
        }
        // A certificate the company's CA signed is not the pinned one, and the other way round.
        let other = await login(trusting: files.path + "/ca.pem")
        #expect(other.status == 3, "\(other.standardError)")
        let pinned = await login(trusting: pin)
        #expect(pinned.status == 0, "\(pinned.standardError)")

        let token = await ChildProcess.runAsync(
            SourceTree.binary("ora"), arguments: ["agents", "token", "create", "--machine", "WS-0101"],
            environment: environment)
        let enrollment = try #require(
            token.standardOutput.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("ora_enr_") },
            "\(token.standardOutput) \(token.standardError)")
        func enroll(trusting file: String) async -> ChildProcess.Result {
            await ChildProcess.runAsync(
                SourceTree.binary("ora-agent"),
                arguments: [
                    "enroll", "--server", base, "--token", String(enrollment), "--machine", "WS-0101", "--ca-file",
                    file, "--state-dir", files.path + "/agent",
                ])
        }
        let refused = await enroll(trusting: files.path + "/ca.pem")
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("cannot reach \(base)"), "\(refused.standardError)")
        let enrolled = await enroll(trusting: pin)
        #expect(enrolled.status == 0, "\(enrolled.standardError)")
    }

    @Test(
        """
        an offer over TLS end to end: ora, the agent's WebSocket and both legs of the screen verify the server, and \
        another replica carries a viewer there only to the key the server published
        """)
    func offerOverTLS() async throws {
        let files = try TemporaryDirectory()
        try await Self.makeCertificates(in: files)
        let ca = files.path + "/ca.pem"
        let server = try await TLSServer(
            certificate: files.path + "/server1.pem", key: files.path + "/server1.key", ca: ca, files: files)
        let base = "https://localhost:\(server.port)"
        // Each operator trusting the test CA alone.
        func operatorCLI(_ user: String, base: String = base) async throws -> OperatorCLI {
            try await OperatorCLI(user, base: base, ora: SourceTree.binary("ora"), environment: ["ORA_CA_FILE": ca])
        }
        let admin = try await operatorCLI("peter.schmidt")
        try FileManager.default.createDirectory(atPath: files.path + "/policies", withIntermediateDirectories: true)
        try files.write(
            "policies/test.yaml",
            OfferFixtures.policy + "\n"
                + OfferFixtures.configuration.components(
                    separatedBy: "agents:")[0])
        let applied = await admin.run("policy", "apply", files.path + "/policies", "--yes")
        #expect(applied.status == 0, "\(applied.standardError)")
        let token = await admin.run("agents", "token", "create", "--machine", "WS-0101")
        let state = files.path + "/agent"
        let enrolled = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "enroll", "--server", base, "--token",
                token.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines),
                "--machine", "WS-0101", "--ca-file", ca, "--state-dir", state,
            ])
        try #require(enrolled.status == 0, "\(enrolled.standardError)")
        // The machine's screen: a program that greets in RFB and then reads what the viewer sends.
        let screen = try files.write(
            "screen", "#!/bin/sh\nprintf 'RFB 003.008\\n'\nexec cat >/dev/null\n", permissions: 0o755)
        let agent = try ChildProcess(
            SourceTree.binary("ora-agent"),
            arguments: [
                "run", "--consent", "command", "--consent-command", try OfferFixtures.consentScript(in: files),
                "--state-dir", state, "--screen-command", screen,
            ])
        defer { agent.send(SIGKILL) }

        let lena = try await operatorCLI("lena.wolf")
        #expect(
            try await eventually(within: .seconds(30)) {
                await lena.run("machines", "--online").standardOutput.contains("ws-0101")
            }, "\(agent.standardErrorSoFar)")
        let offered = await lena.run("offer", "ws-0101", "--ticket", "INC0000001", "--wait")
        #expect(offered.status == 0, "\(offered.standardError)")
        let id = sessionID(in: offered.standardOutput)
        /// The greeting a viewer of `connect`'s local port gets ("" when the connection closes first).
        func greeting(_ connect: ChildProcess, on local: Int) async throws -> String {
            #expect(try await eventually { connect.standardOutputSoFar.contains("point a VNC viewer") })
            let read = await ChildProcess.runAsync(
                "/usr/bin/python3",
                arguments: [
                    "-c",
                    "import socket,sys; c=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=30); "
                        + "d=b''\nwhile len(d)<12:\n  b=c.recv(12-len(d))\n  if not b: break\n  d+=b\nprint(d.decode().strip())",
                    "\(local)",
                ])
            return read.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let local = try Network.freePort()
        let connect = try lena.start(["connect", id, "--listen", "127.0.0.1:\(local)"])
        defer { connect.send(SIGKILL) }
        // The greeting crossed the relay's TLS twice: the agent's leg and ora connect's.
        #expect(
            try await greeting(connect, on: local) == "RFB 003.008",
            "\(connect.standardErrorSoFar) \(agent.standardErrorSoFar.suffix(2000))")

        // A second replica with a certificate of its own: a viewer that reaches it is carried to the first over
        // TLS, checked against the key the first published in server_instances.
        let front = try await TLSServer(
            certificate: files.path + "/server2.pem", key: files.path + "/server2.key", ca: ca, files: files,
            sharing: server)
        // By its address this time: the certificate names 127.0.0.1 too, and `ora connect` checks it by address.
        let lenaFront = try await operatorCLI("lena.wolf", base: "https://127.0.0.1:\(front.port)")
        let carriedPort = try Network.freePort()
        let carried = try lenaFront.start(["connect", id, "--listen", "127.0.0.1:\(carriedPort)"])
        defer { carried.send(SIGKILL) }
        #expect(
            try await greeting(carried, on: carriedPort) == "RFB 003.008",
            "\(carried.standardErrorSoFar) \(front.process.standardErrorSoFar.suffix(2000))")
        // Another key published for the first replica (as if its address now led elsewhere): no viewer is
        // carried there, and the second replica says why. A trigger keeps that key there when the first replica's
        // heartbeat (every 15 seconds) writes its own again.
        let published = try await server.sql(
            "SELECT relay_key_sha256 FROM server_instances WHERE relay_address = '127.0.0.1:\(server.relay)'")
        #expect(published.count == 64, "\(published)")
        _ = try await server.sql(
            """
            CREATE FUNCTION other_key() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN NEW.relay_key_sha256 := repeat('0', 64); RETURN NEW; END $$;
            CREATE TRIGGER other_key BEFORE UPDATE ON server_instances FOR EACH ROW
                WHEN (NEW.relay_address = '127.0.0.1:\(server.relay)') EXECUTE FUNCTION other_key();
            UPDATE server_instances SET relay_key_sha256 = NULL WHERE relay_address = '127.0.0.1:\(server.relay)';
            """)
        #expect(
            try await server.sql(
                "SELECT relay_key_sha256 FROM server_instances WHERE relay_address = '127.0.0.1:\(server.relay)'")
                == String(repeating: "0", count: 64))
        #expect(try await greeting(carried, on: carriedPort) == "", "\(carried.standardErrorSoFar)")
        #expect(
            try await eventually {
                front.process.standardErrorSoFar.contains(
                    "showed a TLS key other than the one it published in server_instances")
            }, "\(front.process.standardErrorSoFar.suffix(2000))")
        #expect(await lena.run("session", "end", id).status == 0)
    }

    @Test("a certificate that cannot be used stops check-config with the setting and the reason")
    func unusableCertificate() async throws {
        let files = try TemporaryDirectory()
        try await Self.makeCertificates(in: files)
        let services = try TestServices.fromEnvironment()
        let yaml = ServerConfigurationFile(database: "ora", on: services).yaml.replacingOccurrences(
            of: "  port: 8080\n",
            with:
                "  port: 8080\n  tls:\n    certificate_chain_file: \(files.path)/server1.pem\n"
                + "    private_key_file: \(files.path)/server2.key\n")
        let checked = await ChildProcess.runAsync(
            SourceTree.binary("ora-server"),
            arguments: ["check-config", "--config", try files.write("ora-server.yaml", yaml)])
        #expect(checked.status == 2)
        #expect(
            checked.standardError.contains(
                "listen.tls: the certificate and key cannot be used: the private key in \(files.path)/server2.key "
                    + "is not the one of the certificate in \(files.path)/server1.pem"),
            "\(checked.standardError)")
        // An agent cannot take an address for an https:// server: its certificate is checked by name.
        let byAddress = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "enroll", "--server", "https://127.0.0.1:8443", "--token", "t", "--machine", "WS-0101",
                "--state-dir", files.path + "/agent",
            ])
        #expect(byAddress.status != 0)
        #expect(
            byAddress.standardError.contains(
                "an https:// server is named as its certificate names it, not by an address (127.0.0.1)"),
            "\(byAddress.standardError)")
    }

    /// The string value of `name` in a JSON object's text.
    static func field(_ name: String, in json: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            return nil
        }
        return object[name] as? String
    }
}
