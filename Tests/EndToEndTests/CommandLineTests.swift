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

    @Test("https:// to a port that speaks plain HTTP fails at once, saying so")
    func tlsToPlainHTTP() async throws {
        let server = try await RunningServer(tls: false)
        let home = try TemporaryDirectory()
        let tls = server.base.replacingOccurrences(of: "http://", with: "https://")
        let started = ContinuousClock.now
        let result = await ChildProcess.runAsync(
            ora, arguments: ["status", "--server", tls], environment: ["ORA_CONFIG_DIR": home.path])
        // At once: the server answers a TLS handshake at its first byte, not after its 30-second opening limit.
        let waited = ContinuousClock.now - started
        #expect(waited < .seconds(10), "\(waited)")
        #expect(result.status == 3)
        #expect(
            result.standardError
                == "ora: error: cannot reach \(tls): the server does not speak TLS on this port (use http://, or the "
                + "port where it speaks TLS)\n", "\(result.standardError)")
    }

    @Test("bash completes the commands from the completion script each tool generates")
    func completion() async throws {
        /// What bash offers after `line` (the words typed, the last one being completed), with `tool`'s script.
        func completions(_ tool: String, _ words: [String]) async -> [String] {
            let quoted = words.map { "'\($0)'" }.joined(separator: " ")
            let line = words.joined(separator: " ")
            let script = """
                source <("\(SourceTree.binary(tool))" --generate-completion-script bash)
                COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); COMP_LINE='\(line)'; COMP_POINT=\(line.count)
                _\(tool) '\(tool)' '\(words.last ?? "")' '\(words.dropLast().last ?? "")'
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let result = await ChildProcess.runAsync("/bin/bash", arguments: ["-c", script])
            return result.standardOutput.split(separator: "\n").map(String.init)
        }
        #expect(await completions("ora", ["ora", "pol"]) == ["policy"])
        let policy = await completions("ora", ["ora", "policy", ""])
        #expect(
            ["check", "diff", "apply", "show", "history", "rollback", "explain"].allSatisfy(policy.contains),
            "\(policy)")
        #expect(Set(await completions("ora-agent", ["ora-agent", "inv"])) == ["invite", "invitations"])
        #expect(await completions("ora-server", ["ora-server", "che"]) == ["check-config"])
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

    @Test(
        "bad arguments are refused before anything is sent, each with what was wrong",
        arguments: [
            (["session", "show", "not-a-session"], "'not-a-session' is not a session id"),
            (["session", "end", "42"], "'42' is not a session id"),
            (["session", "control", "x"], "'x' is not a session id"),
            (
                ["agents", "token", "create", "--machine", "ws-0101", "--expires", "soon"],
                "--expires takes a duration such as 30m, 1h or 7d, not 'soon'"
            ),
            (
                ["agents", "token", "create"],
                "say what the token may enroll: exactly one of --machine NAME, --ou DN or --group DN"
            ),
            (
                ["agents", "token", "create", "--machine", "ws-0101", "--ou", "ou=Laptops,dc=corp,dc=example"],
                "say what the token may enroll: exactly one of --machine NAME, --ou DN or --group DN"
            ),
            (
                ["agents", "rekey", "ws-0101", "--expires", "later"],
                "--expires takes a duration such as 30m, 1h or 2d, not 'later'"
            ),
            (["connect", "x"], "'x' is not a session id"),
            (
                ["connect", "11111111-2222-4333-8444-555555555555", "--listen", "5901"],
                "--listen takes HOST:PORT, such as 127.0.0.1:5901"
            ),
            (
                ["connect", "11111111-2222-4333-8444-555555555555", "--listen", ":5901"],
                "--listen takes HOST:PORT, such as 127.0.0.1:5901"
            ),
            (
                ["connect", "11111111-2222-4333-8444-555555555555", "--listen", "[]:5901"],
                "--listen takes HOST:PORT, such as 127.0.0.1:5901"
            ),
            (
                ["connect", "11111111-2222-4333-8444-555555555555", "--listen", "127.0.0.1:0"],
                "--listen takes HOST:PORT, such as 127.0.0.1:5901"
            ),
        ])
    func badArguments(arguments: [String], message: String) async throws {
        let home = try TemporaryDirectory()
        let result = await ChildProcess.runAsync(
            ora, arguments: arguments + ["--server", "http://127.0.0.1:9"], environment: ["ORA_CONFIG_DIR": home.path])
        #expect(result.status == 64, "\(result.standardError)")
        #expect(result.standardError.contains(message), "\(result.standardError)")
    }

    @Test(
        "the agent refuses a server that is not https, a consent setting without its program, and a missing enrollment",
        arguments: [
            (
                ["enroll", "--server", "http://10.1.2.3:8080", "--token", "ora_enr_x", "--machine", "WS-0101"], 2,
                "the server URL must start with https://"
            ),
            (["run", "--consent", "command"], 64, "--consent command needs --consent-command PROGRAM"),
            (["run", "--consent-command", "/bin/true"], 64, "--consent-command goes with --consent command"),
            (
                ["run", "--consent", "telepathy"], 64,
                "The value 'telepathy' is invalid for '--consent <consent>'. Please provide one of 'terminal', 'desktop' or 'command'."
            ),
            (["run", "--consent", "terminal"], 2, "this machine is not enrolled"),
            (
                ["run", "--display", ":1", "--screen-command", "x11vnc -inetd"], 64,
                "--display goes with the default screen backend, not with --screen-command"
            ),
            (["run", "--screen-command", " "], 64, "--screen-command needs a program"),
        ])
    func agentArguments(arguments: [String], status: Int32, message: String) async throws {
        let state = try TemporaryDirectory()
        let result = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"), arguments: arguments + ["--state-dir", state.path + "/agent"])
        #expect(result.status == status, "\(result.standardError)")
        #expect(result.standardError.contains(message), "\(result.standardError)")
    }
}
