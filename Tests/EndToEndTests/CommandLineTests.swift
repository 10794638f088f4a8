import Foundation
import ORATestSupport
import Testing

/// What `ora` says before it talks to any server.
@Suite("ora command line checks")
struct CommandLineTests {
    let ora = SourceTree.binary("ora")

    @Test(
        "passwords and tokens never go over plain HTTP to another machine",
        arguments: ["http://ora.corp.example", "http://10.1.2.3:8080", "ftp://127.0.0.1", "ora.corp.example"])
    func refusedServers(server: String) async throws {
        let home = try TemporaryDirectory()
        let result = await ChildProcess.runAsync(
            ora, arguments: ["login", "--server", server, "--user", "lena.wolf", "--password-stdin"],
            environment: ["ORA_CONFIG_DIR": home.path], standardInput: "ora-demo\n")
        #expect(result.status == 64)
        #expect(result.standardError.contains("the server URL must start with https://"))
    }

    @Test("no server, no login: each says what to do")
    func missingSettings() async throws {
        let home = try TemporaryDirectory()
        let noServer = await ChildProcess.runAsync(
            ora, arguments: ["status"], environment: ["ORA_CONFIG_DIR": home.path, "ORA_SERVER": ""])
        #expect(noServer.status == 64)
        #expect(noServer.standardError.contains("no server given: use --server URL or set ORA_SERVER"))
        let notLoggedIn = await ChildProcess.runAsync(
            ora, arguments: ["whoami"], environment: ["ORA_CONFIG_DIR": home.path])
        #expect(notLoggedIn.status == 4)
        #expect(notLoggedIn.standardError == "ora: error: not logged in; run: ora login --user NAME\n")
    }

    @Test("without a terminal, login asks for --password-stdin instead of reading a password")
    func noTerminal() async throws {
        let home = try TemporaryDirectory()
        // setsid leaves the program without a controlling terminal, as under CI or cron.
        let result = await ChildProcess.runAsync(
            "/usr/bin/setsid",
            arguments: ["--wait", ora, "login", "--server", "http://127.0.0.1:9", "--user", "lena.wolf"],
            environment: ["ORA_CONFIG_DIR": home.path])
        #expect(result.status == 2)
        #expect(result.standardError == "ora: error: no terminal to ask for the password on; use --password-stdin\n")
    }
}
