import Crypto
public import Foundation
public import ORAClient
import ORACore
import OpenAPIRuntime

/// The server settings, policy and person at the machine that tests of offers share.
public enum OfferFixtures {
    public static let configuration = """
        roles:
          administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
          auditors: ["cn=Security,ou=Groups,dc=corp,dc=example"]
        agents:
          offers_per_machine_per_minute: 30
        """

    /// Tier 2 may control workstations, tier 1 only view them; no schedule, so the test runs at any hour.
    public static let policy = """
        policies:
          - name: tier2-control-workstations
            helpers: { groups: ["cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"] }
            targets: { ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"] }
            allow: control
            require: { ticket: '^INC[0-9]{7}$' }
            consent_timeout: 10s
            max_duration: 1h
          - name: tier1-view-workstations
            helpers: { groups: ["cn=Helpdesk Tier 1,ou=Groups,dc=corp,dc=example"] }
            targets: { ous: ["ou=Workstations,ou=Computers,dc=corp,dc=example"] }
            allow: view
            consent_timeout: 10s
        """

    /// The person at the machine, played by a script: yes to tickets ending in 1, no to those ending in 2, no
    /// answer to those ending in 3, yes to those ending in 4 once a file `consent-go` is in `directory`; control
    /// questions are answered with the content of `control-answer`.
    public static func consentScript(in directory: TemporaryDirectory) throws -> String {
        let path = try directory.write(
            "consent.sh",
            """
            #!/bin/sh
            input=$(cat)
            printf '%s\\n' "$input" >> \(directory.path)/questions.log
            case "$input" in
              *'"question":"control"'*) cat \(directory.path)/control-answer; exit 0 ;;
            esac
            case "$input" in
              *INC0000001*) echo yes ;;
              *INC0000003*) sleep 60; echo yes ;;
              *INC0000004*) while [ ! -e \(directory.path)/consent-go ]; do sleep 0.05; done; echo yes ;;
              *) echo no ;;
            esac
            """, permissions: 0o755)
        try directory.write("control-answer", "yes\n", permissions: 0o644)
        return path
    }
}

/// What a test of offers starts from: a server with the test policy applied, an administrator, and one machine
/// enrolled, its agent's state in `state`.
public struct OfferSetup: Sendable {
    public let server: RunningServer
    public let admin: OperatorCLI
    public let files: TemporaryDirectory
    public let policies: TemporaryDirectory
    public var state: String { files.path + "/agent" }

    /// Starts `ora-agent run` for the enrolled machine, the person at it played by `consentScript`.
    public func startAgent(_ extraArguments: String...) throws -> ChildProcess {
        try startAgent(arguments: extraArguments)
    }

    /// Starts the enrolled agent with the consent script, and `extraArguments`.
    public func startAgent(arguments extraArguments: [String]) throws -> ChildProcess {
        try ChildProcess(
            SourceTree.binary("ora-agent"),
            arguments: [
                "run", "--consent", "command", "--consent-command", try OfferFixtures.consentScript(in: files),
                "--state-dir", state,
            ] + extraArguments)
    }

    /// The server (with TLS of its own unless `tls` is false: see `RunningServer`), the test policy applied, and
    /// `machine` enrolled.
    public static func make(
        enrolling machine: String, configuration: String = OfferFixtures.configuration,
        policy: String = OfferFixtures.policy, directoryExtra: String = "", auditExtra: String = "",
        screenExtra: String = "", tls: Bool = true
    ) async throws
        -> OfferSetup
    {
        let server = try await RunningServer(
            extra: configuration, directoryExtra: directoryExtra, auditExtra: auditExtra, screenExtra: screenExtra,
            tls: tls)
        let ora = SourceTree.binary("ora")
        let admin = try await OperatorCLI("peter.schmidt", server: server, ora: ora)
        let policies = try TemporaryDirectory()
        try policies.write(
            "test.yaml", policy + "\n" + OfferFixtures.configuration.components(separatedBy: "agents:")[0])
        let applied = await admin.run("policy", "apply", policies.path, "--yes")
        guard applied.status == 0 else { throw TestSetupError("policy apply: \(applied.standardError)") }
        let setup = OfferSetup(server: server, admin: admin, files: try TemporaryDirectory(), policies: policies)
        let token = await admin.run("agents", "token", "create", "--machine", machine)
        let enrolled = await ChildProcess.runAsync(
            SourceTree.binary("ora-agent"),
            arguments: [
                "enroll", "--server", server.base, "--token",
                token.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), "--machine", machine,
                "--state-dir", setup.state,
            ] + server.agentTrust)
        guard enrolled.status == 0 else { throw TestSetupError("enroll \(machine): \(enrolled.standardError)") }
        return setup
    }
}

extension OfferSetup {
    /// Enrolls `machines` (computer objects below `ou`) with one token, as their agents would, without starting
    /// agents: machines for the lists to show.
    public func enroll(_ machines: [String], below ou: String = "ou=Computers,dc=corp,dc=example") async throws {
        let token = await admin.run("agents", "token", "create", "--ou", ou, "--uses", String(machines.count))
        guard token.status == 0 else { throw TestSetupError("token create: \(token.standardError)") }
        let secret = token.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        for machine in machines {
            let key = DevicePublicKey.text(P256.Signing.PrivateKey().publicKey)
            let answer = try await HTTP.post(
                server.base + "/agent/v1/enroll",
                json: #"""
                    {"token": "\#(secret)", "machine": "\#(machine)", "public_key": "\#(key)", "os": "Debian",
                     "agent_version": "1"}
                    """#)
            guard answer.status == 201 else { throw TestSetupError("enroll \(machine): \(answer.body)") }
        }
    }
}

/// Follows the session's event stream, at most `within`, until `condition` holds for its state (its chat lines are
/// passed over); the stream is closed when this returns.
public func session(
    _ id: String, on server: RunningServer, token: String, within: Duration = .seconds(30),
    until condition: @escaping @Sendable (Schemas.Session) -> Bool
) async throws -> Schemas.Session {
    let client = Client(server: URL(string: server.base)!, token: token, caFile: server.caFile, timeout: within)
    return try await withThrowingTaskGroup(of: Schemas.Session?.self) { group in
        group.addTask {
            let events = try await client.followSession(path: .init(id: id)).ok.body.textEventStream
            for try await event in events.asDecodedServerSentEvents() where event.event == "state" {
                guard let data = event.data else { continue }
                let state = try JSONDecoder.oraAPI().decode(Schemas.Session.self, from: Data(data.utf8))
                if condition(state) { return state }
            }
            return nil
        }
        // The stream's heartbeats keep its connection alive: the wait is bounded here.
        group.addTask {
            try await Task.sleep(for: within)
            throw TestSetupError("session \(id) did not reach the expected state within \(within)")
        }
        defer { group.cancelAll() }
        guard let state = try await group.next() ?? nil else {
            throw TestSetupError("session \(id) ended its event stream before reaching the expected state")
        }
        return state
    }
}

/// The chat lines the session's event stream brings, until `count` have come, at most `within`.
public func chatLines(
    of id: String, on server: RunningServer, token: String, count: Int, within: Duration = .seconds(30)
) async throws -> [Schemas.ChatMessage] {
    let client = Client(server: URL(string: server.base)!, token: token, caFile: server.caFile, timeout: within)
    let events = try await client.followSession(path: .init(id: id)).ok.body.textEventStream
    var lines: [Schemas.ChatMessage] = []
    for try await event in events.asDecodedServerSentEvents() where event.event == "chat" {
        guard let data = event.data else { continue }
        lines.append(try JSONDecoder.oraAPI().decode(Schemas.ChatMessage.self, from: Data(data.utf8)))
        if lines.count == count { break }
    }
    return lines
}

/// The audit events of one session, in order.
public func auditEvents(of id: String, on server: RunningServer) async throws -> [String] {
    try await server.sql(
        "SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events WHERE session_id = '\(id)'"
    ).split(separator: ",").map(String.init)
}

/// The session id `ora offer` printed on its first line.
public func sessionID(in output: String) -> String {
    let first = output.split(separator: "\n").first.map(String.init) ?? ""
    return first.components(separatedBy: "session ").last ?? ""
}

/// Waits, at most `within`, until the machine's agent is online.
public func waitUntilOnline(
    _ machine: String, server: RunningServer, token: String, within: Duration = .seconds(20)
) async throws {
    for _ in 0..<(within.components.seconds * 10) {
        let answer = try await HTTP.get(server.base + "/api/v1/machines?q=\(machine)&online=true", token: token)
        if answer.body.contains(#""name":"\#(machine)","online":true"#) { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw TestSetupError("\(machine) did not come online")
}
