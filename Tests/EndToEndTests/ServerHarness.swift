import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ORAClient
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
    var directoryExtra: String = ""
    var databaseUser = "ora"
    var auditSigningKeyFile: String? = nil
    /// The audit journal's file (`audit.journal`).
    var auditJournal: String? = nil
    /// Settings added to the `audit` section (indented by two spaces).
    var auditExtra: String = ""

    var yaml: String {
        """
        listen:
          host: 127.0.0.1
          port: \(port)
        database:
          host: 127.0.0.1
          port: \(databasePort)
          name: \(databaseName)
          user: \(databaseUser)
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
        \(directoryExtra)
        audit:
          write_timeout: 2s
        \(auditSigningKeyFile.map { "  signing_key_file: \($0)" } ?? "")
        \(auditJournal.map { "  journal: \($0)" } ?? "")
        \(auditExtra)
        screen:
          relay_port: 0
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
        var retryAfter: String? = nil
        var contentSecurityPolicy: String? = nil

        /// The body as `type` of the API's document.
        func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
            try JSONDecoder.oraAPI().decode(type, from: Data(body.utf8))
        }

        /// The body as `type`, or `nil` when it is not one.
        func json<Value: Decodable>(_ type: Value.Type) -> Value? { try? decode(type) }

        /// The body in the API's one error shape, or `nil` when it is not in it.
        var refusal: Schemas._Error? { json(Schemas._Error.self) }
    }

    static func get(_ url: String, token: String? = nil) async throws -> Answer {
        try await send("GET", url, token: token)
    }

    static func post(_ url: String, json: String? = nil, token: String? = nil) async throws -> Answer {
        try await send("POST", url, body: json, token: token)
    }

    static func send(
        _ method: String, _ url: String, body: String? = nil, token: String? = nil, headers: [String: String] = [:]
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: UInt(response.status.code), body: String(buffer: body),
            contentType: response.headers.first(name: "content-type"),
            retryAfter: response.headers.first(name: "retry-after"),
            contentSecurityPolicy: response.headers.first(name: "content-security-policy"))
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
    var warnings: [String]?

    init(_ text: String) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(text.utf8))
    }
}
