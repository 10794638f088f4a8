import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ORATestSupport

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
