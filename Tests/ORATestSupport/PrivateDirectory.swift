import Foundation

/// A private slapd started with `Deploy/dev/services`, so a test can stop and start it without disturbing the
/// directory other tests share.
public final class PrivateDirectory: @unchecked Sendable {
    /// Where its state lives.
    public let state: TemporaryDirectory
    /// Its URI.
    public let uri: String
    /// The ora service account.
    public let bindDN: String
    /// The file holding the service account's password.
    public let passwordFile: String
    /// The service account's password.
    public var password: String {
        (try? String(contentsOfFile: passwordFile, encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? ""
    }

    /// Starts a new slapd with the demo directory.
    public init() async throws {
        state = try TemporaryDirectory()
        // Ports are picked here, from the kernel, so that tests starting directories at the same time do not pick the
        // same ones; a port taken between picking and binding is retried with new ones.
        var attempt = 0
        var port = 0
        while true {
            attempt += 1
            let ports = try { () throws -> (Int, Int) in
                // Both sockets are open at once, so the two ports differ; they close when this closure returns.
                let plain = try BlackHoleListener()
                let tls = try BlackHoleListener()
                return (plain.port, tls.port)
            }()
            port = ports.0
            let tlsPort = ports.1
            let result = try await ChildProcess.run(
                SourceTree.root + "/Deploy/dev/services",
                arguments: ["up", "--only", "slapd", "--state", state.path],
                environment: ["ORA_LDAP_PORT": "\(port)", "ORA_LDAPS_PORT": "\(tlsPort)"]
            )
            if result.status == 0 { break }
            guard attempt < 3 else { throw TestSetupError("private slapd did not start: \(result.standardError)") }
            try? FileManager.default.removeItem(atPath: state.path + "/slapd")
        }
        Leftovers.stopServiceAtExit(pidFile: state.path + "/slapd/slapd.pid", signal: SIGTERM)
        uri = "ldap://127.0.0.1:\(port)"
        bindDN = "cn=ora-service,ou=Service Accounts,dc=corp,dc=example"
        passwordFile = state.path + "/slapd/service-password"
    }

    deinit {
        state.stopService("slapd", pidFile: "slapd/slapd.pid", signal: SIGTERM)
    }

    /// Applies LDIF as the directory's administrator (either naming context).
    public func modify(_ ldif: String) async throws {
        let files = try TemporaryDirectory()
        let path = try files.write("change.ldif", ldif)
        let admin =
            ldif.lowercased().contains("dc=ad,dc=example") ? "cn=admin,dc=ad,dc=example" : "cn=admin,dc=corp,dc=example"
        let result = try await ChildProcess.run(
            "/usr/bin/ldapmodify",
            arguments: ["-x", "-H", uri, "-D", admin, "-y", state.path + "/slapd/admin-password", "-f", path])
        guard result.status == 0 else { throw TestSetupError("ldapmodify failed: \(result.standardError)") }
    }

    /// Stops it (SIGTERM).
    public func stop() async throws {
        let result = try await ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services", arguments: ["down", "--only", "slapd", "--state", state.path])
        guard result.status == 0 else { throw TestSetupError("stopping slapd failed: \(result.standardError)") }
    }

    /// Starts it again with the same data.
    public func start() async throws {
        let result = try await ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services", arguments: ["up", "--only", "slapd", "--state", state.path])
        guard result.status == 0 else { throw TestSetupError("starting slapd failed: \(result.standardError)") }
    }
}
