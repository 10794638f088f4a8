import Foundation
import ORAClient
import ORATestSupport
import Testing

/// The Debian packages `Deploy/debian/build` makes, from this build's binaries: what they hold and depend on, their
/// units verified and hardened, and — unpacked where dpkg would install them — the server migrating, serving the
/// console and an offer of help reaching the packaged agent, with the packaged CLI.
@Suite("Debian packages of the server and the agent")
struct DebianPackageTests {
    static func run(_ executable: String, _ arguments: String...) async -> ChildProcess.Result {
        await ChildProcess.runAsync(executable, arguments: arguments)
    }

    @Test("built, unpacked and run from the installed paths: migrate, serve, enroll the agent, offer help")
    func builtAndRun() async throws {
        let out = try TemporaryDirectory()
        let built = await Self.run(
            SourceTree.root + "/Deploy/debian/build", "--bin-dir", SourceTree.binaryDirectory, "--out", out.path,
            "--compression", "none")
        try #require(built.status == 0, "\(built.standardError)")
        let debs = built.standardOutput.split(separator: "\n").map(String.init)
        let serverDeb = try #require(debs.first { $0.contains("/ora-server_") }, "\(built.standardOutput)")
        let agentDeb = try #require(debs.first { $0.contains("/ora-agent_") }, "\(built.standardOutput)")

        // What they are and need: the libraries the binaries link, and the programs the server and agent start.
        let serverFields = await Self.run("/usr/bin/dpkg-deb", "--field", serverDeb, "Package", "Depends")
        #expect(serverFields.standardOutput.hasPrefix("Package: ora-server\n"), "\(serverFields.standardOutput)")
        for needed in ["libldap-2.5-0", "novnc", "adduser", "ca-certificates"] {
            #expect(serverFields.standardOutput.contains(needed), "\(needed): \(serverFields.standardOutput)")
        }
        let agentFields = await Self.run("/usr/bin/dpkg-deb", "--field", agentDeb, "Depends")
        for needed in ["x11vnc", "zenity", "python3-gi", "gir1.2-gtk-3.0"] {
            #expect(agentFields.standardOutput.contains(needed), "\(needed): \(agentFields.standardOutput)")
        }
        let conffiles = await Self.run("/usr/bin/dpkg-deb", "--info", serverDeb, "conffiles")
        #expect(conffiles.standardOutput == "/etc/ora/ora-server.yaml\n", "\(conffiles.standardOutput)")
        let contents = await Self.run("/usr/bin/dpkg-deb", "--contents", serverDeb)
        for path in [
            "./usr/lib/ora-server/ora-server", "./usr/bin/ora-server -> ../lib/ora-server/ora-server", "./usr/bin/ora",
            "./lib/systemd/system/ora-server.service", "./etc/ora/ora-server.yaml",
            "./usr/lib/ora-server/ora_ORAServer.resources/",
        ] {
            #expect(contents.standardOutput.contains(path), "\(path) is not in the package")
        }
        // The configuration is the server's group's to read, nobody else's (postinst sets the group).
        #expect(contents.standardOutput.contains("-rw-r----- root/root"), "\(contents.standardOutput)")

        let root = try TemporaryDirectory()
        for deb in [serverDeb, agentDeb] {
            let unpacked = await Self.run("/usr/bin/dpkg-deb", "-x", deb, root.path)
            try #require(unpacked.status == 0, "\(unpacked.standardError)")
        }

        // The units: systemd finds nothing to complain about, and the server's exposes little.
        let units = try TemporaryDirectory()
        for (unit, binary) in [
            ("ora-server.service", "/usr/lib/ora-server/ora-server"), ("ora-agent.service", "/usr/bin/ora-agent"),
        ] {
            let text = try String(contentsOfFile: root.path + "/lib/systemd/system/" + unit, encoding: .utf8)
            let copy = try units.write(unit, text.replacingOccurrences(of: binary, with: root.path + binary))
            let verified = await Self.run("/usr/bin/systemd-analyze", "verify", copy)
            #expect(verified.status == 0 && verified.standardError.isEmpty, "\(unit): \(verified.standardError)")
        }
        let security = await Self.run(
            "/usr/bin/systemd-analyze", "security", "--offline=true", "--root=\(root.path)", "ora-server.service")
        let exposure = security.standardOutput.split(separator: "\n").last { $0.contains("Overall exposure level") }
            .flatMap { line in Double(line.split(separator: ":").last?.split(separator: " ").first ?? "") }
        #expect((exposure ?? 10) <= 2.0, "\(security.standardOutput.suffix(400))")

        // The packaged configuration is accepted once its secrets exist where it names them.
        let services = try TestServices.fromEnvironment()
        let secrets = try TemporaryDirectory()
        var configuration = try String(contentsOfFile: root.path + "/etc/ora/ora-server.yaml", encoding: .utf8)
        for (placeholder, file) in [
            ("/etc/ora/secrets/database-password", try secrets.write("database-password", "secret\n")),
            ("/etc/ora/secrets/directory-password", try secrets.write("directory-password", "secret\n")),
            ("/etc/ora/secrets/audit-signing-key.pem", services.auditSigningKeyFile),
            ("/etc/ora/ca/database-ca.pem", services.ldapCAFile), ("/etc/ora/ca/corp-root-ca.pem", services.ldapCAFile),
        ] {
            #expect(configuration.contains(placeholder), "\(placeholder) is not in the packaged configuration")
            configuration = configuration.replacingOccurrences(of: placeholder, with: file)
        }
        let checked = await Self.run(
            root.path + "/usr/bin/ora-server", "check-config", "--config",
            try secrets.write("ora-server.yaml", configuration))
        #expect(checked.status == 0, "\(checked.standardError)")

        // `ora-server migrate` from the installed path brings a new database up to date.
        let database = try await services.createDatabase(prefix: "e2e")
        let migrateConfiguration = try secrets.write(
            "migrate.yaml",
            ServerConfigurationFile(database: database, on: services).yaml)
        let migrated = await Self.run(root.path + "/usr/bin/ora-server", "migrate", "--config", migrateConfiguration)
        #expect(migrated.status == 0, "\(migrated.standardError)")
        #expect(migrated.standardOutput.hasPrefix("applied migrations: 1, 2, "), "\(migrated.standardOutput)")
        try await services.dropDatabase(database)

        // The installed server serves the console from the files beside it.
        let server = try await RunningServer(
            extra: OfferFixtures.configuration, binary: root.path + "/usr/bin/ora-server")
        let console = try await HTTP.get(server.base + "/")
        #expect(console.status == 200)
        #expect(console.body.contains("<title>ora</title>"), "\(console.body.prefix(300))")

        // The installed CLI applies the policy and makes a token; the installed agent enrolls, and is offered help.
        let ora = root.path + "/usr/bin/ora"
        let admin = try await OperatorCLI("peter.schmidt", server: server, ora: ora)
        let policies = try TemporaryDirectory()
        try policies.write("test.yaml", OfferFixtures.policy)
        let applied = await admin.run("policy", "apply", policies.path, "--yes")
        try #require(applied.status == 0, "\(applied.standardError)")
        let token = await admin.run("agents", "token", "create", "--machine", "WS-0101")
        let agentFiles = try TemporaryDirectory()
        let state = agentFiles.path + "/agent"
        let enrolled = await Self.run(
            root.path + "/usr/bin/ora-agent", "enroll", "--server", server.base, "--token",
            token.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), "--machine", "WS-0101",
            "--state-dir", state, "--ca-file", try #require(server.caFile))
        try #require(enrolled.status == 0, "\(enrolled.standardError)")
        let agent = try ChildProcess(
            root.path + "/usr/bin/ora-agent",
            arguments: [
                "run", "--consent", "command", "--consent-command", try OfferFixtures.consentScript(in: agentFiles),
                "--state-dir", state,
            ])
        defer { agent.send(SIGKILL) }
        let lena = try await OperatorCLI("lena.wolf", server: server, ora: ora)
        try await waitUntilOnline("ws-0101", server: server, token: try await server.token("lena.wolf"))
        let offered = await lena.run("offer", "ws-0101", "--ticket", "INC0000001", "--wait")
        #expect(offered.status == 0, "\(offered.standardError)")
        #expect(
            try await auditEvents(of: sessionID(in: offered.standardOutput), on: server).prefix(4)
                == ["offer.requested", "offer.delivered", "consent.granted", "session.started"])
    }
}
