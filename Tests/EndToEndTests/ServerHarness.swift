import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ORATestSupport

/// A private slapd started with `Deploy/dev/services`, so a test can stop and start it without disturbing the
/// directory other tests share.
final class PrivateDirectory: @unchecked Sendable {
    let state: TemporaryDirectory
    let uri: String
    let bindDN: String
    let passwordFile: String

    init() throws {
        state = try TemporaryDirectory()
        let port = try Network.freePort()
        let result = try ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services",
            arguments: ["up", "--only", "slapd", "--state", state.path],
            environment: ["ORA_LDAP_PORT": "\(port)"]
        )
        guard result.status == 0 else { throw TestSetupError("private slapd did not start: \(result.standardError)") }
        uri = "ldap://127.0.0.1:\(port)"
        bindDN = "cn=ora-service,ou=Service Accounts,dc=corp,dc=example"
        passwordFile = state.path + "/slapd/service-password"
    }

    deinit {
        _ = try? ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services", arguments: ["down", "--only", "slapd", "--state", state.path])
    }

    func stop() throws {
        let result = try ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services", arguments: ["down", "--only", "slapd", "--state", state.path])
        guard result.status == 0 else { throw TestSetupError("stopping slapd failed: \(result.standardError)") }
    }

    func start() throws {
        let result = try ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services", arguments: ["up", "--only", "slapd", "--state", state.path])
        guard result.status == 0 else { throw TestSetupError("starting slapd failed: \(result.standardError)") }
    }
}

/// Writes ora-server configuration files for tests.
struct ServerConfigurationFile {
    var port: Int
    var databaseName: String
    var databasePort: Int
    var ldapURI: String
    var ldapBindDN: String
    var ldapPasswordFile: String
    var databasePasswordFile: String

    var yaml: String {
        """
        listen:
          host: 127.0.0.1
          port: \(port)
        database:
          host: 127.0.0.1
          port: \(databasePort)
          name: \(databaseName)
          user: ora
          password_file: \(databasePasswordFile)
          tls: disable
          connect_timeout: 2s
        directory:
          uris: ["\(ldapURI)"]
          base_dn: "dc=corp,dc=example"
          bind_dn: "\(ldapBindDN)"
          password_file: \(ldapPasswordFile)
          connect_timeout: 1s
          timeout: 2s
        log:
          level: info
        """
    }
}

/// HTTP requests against a server a test started.
enum HTTP {
    struct Answer {
        var status: UInt
        var body: String
        var contentType: String?
    }

    static func get(_ url: String) async throws -> Answer {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: UInt(response.status.code), body: String(buffer: body),
            contentType: response.headers.first(name: "content-type"))
    }

    /// Waits until `url` answers at all, while `process` still runs; gives up after `attempts` tries.
    static func waitUntilServing(_ url: String, process: ChildProcess, attempts: Int = 240) async throws {
        for _ in 0..<attempts {
            guard process.isRunning else {
                throw TestSetupError("ora-server exited before serving: \(process.standardErrorSoFar)")
            }
            if (try? await get(url)) != nil { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw TestSetupError("ora-server did not start serving \(url): \(process.standardErrorSoFar)")
    }
}

/// The readiness document of `GET /readyz`.
struct ReadinessDocument: Decodable {
    struct Check: Decodable {
        var ready: Bool
        var error: String?
    }
    var status: String
    var database: Check
    var directory: Check

    init(_ text: String) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(text.utf8))
    }
}
