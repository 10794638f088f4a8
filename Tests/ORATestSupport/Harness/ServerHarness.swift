import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
public import ORAClient

/// Writes ora-server configuration files for tests.
public struct ServerConfigurationFile {
    public var port: Int
    public var databaseName: String
    public var databasePort: Int
    public var ldapURI: String
    public var ldapBindDN: String
    public var ldapPasswordFile: String
    public var databasePasswordFile: String
    public var directoryExtra: String = ""
    public var databaseUser = "ora"
    public var auditSigningKeyFile: String? = nil
    /// The audit journal's file (`audit.journal`).
    public var auditJournal: String? = nil
    /// Settings added to the `audit` section (indented by two spaces).
    public var auditExtra: String = ""
    /// Settings added to the `listen` section (indented by two spaces).
    public var listenExtra: String = ""
    /// Settings added to the `screen` section (indented by two spaces).
    public var screenExtra: String = ""
    /// The relay port; any free one by default.
    public var relayPort = 0

    public init(
        port: Int, databaseName: String, databasePort: Int, ldapURI: String, ldapBindDN: String,
        ldapPasswordFile: String, databasePasswordFile: String, directoryExtra: String = "",
        databaseUser: String = "ora", auditSigningKeyFile: String? = nil, auditJournal: String? = nil,
        auditExtra: String = ""
    ) {
        self.port = port
        self.databaseName = databaseName
        self.databasePort = databasePort
        self.ldapURI = ldapURI
        self.ldapBindDN = ldapBindDN
        self.ldapPasswordFile = ldapPasswordFile
        self.databasePasswordFile = databasePasswordFile
        self.directoryExtra = directoryExtra
        self.databaseUser = databaseUser
        self.auditSigningKeyFile = auditSigningKeyFile
        self.auditJournal = auditJournal
        self.auditExtra = auditExtra
    }

    /// A configuration for `database` on the shared test services (their PostgreSQL and directory), served on `port`.
    public init(database: String, on services: TestServices, port: Int = 8080, auditSigningKeyFile: String? = nil) {
        self.init(
            port: port, databaseName: database, databasePort: services.postgresPort, ldapURI: services.ldapURI,
            ldapBindDN: services.ldapBindDN, ldapPasswordFile: services.ldapPasswordFile,
            databasePasswordFile: services.postgresPasswordFile, auditSigningKeyFile: auditSigningKeyFile)
    }

    public var yaml: String {
        """
        listen:
          host: 127.0.0.1
          port: \(port)
        \(listenExtra)
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
          relay_port: \(relayPort)
        \(screenExtra)
        log:
          level: info
        """
    }
}

/// HTTP requests against a server a test started.
public enum HTTP {
    public struct Answer {
        public var status: UInt
        public var body: String
        public var contentType: String?
        public var retryAfter: String? = nil
        public var contentSecurityPolicy: String? = nil
        /// Every header, by its name in lower case (the first value of each).
        public var headers: [String: String] = [:]

        /// The body as `type` of the API's document.
        public func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
            try JSONDecoder.oraAPI().decode(type, from: Data(body.utf8))
        }

        /// The body as `type`, or `nil` when it is not one.
        public func json<Value: Decodable>(_ type: Value.Type) -> Value? { try? decode(type) }

        /// The body in the API's one error shape, or `nil` when it is not in it.
        public var refusal: Schemas._Error? { json(Schemas._Error.self) }
    }

    public static func get(_ url: String, token: String? = nil) async throws -> Answer {
        try await send("GET", url, token: token)
    }

    public static func post(_ url: String, json: String? = nil, token: String? = nil) async throws -> Answer {
        try await send("POST", url, body: json, token: token)
    }

    public static func send(
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
        let response = try await TestTLS.httpClient.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: UInt(response.status.code), body: String(buffer: body),
            contentType: response.headers.first(name: "content-type"),
            retryAfter: response.headers.first(name: "retry-after"),
            contentSecurityPolicy: response.headers.first(name: "content-security-policy"),
            headers: Dictionary(
                response.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first }))
    }

    /// Waits until `url` answers at all, while `process` still runs; gives up after `attempts` tries.
    public static func waitUntilServing(_ url: String, process: ChildProcess, attempts: Int = 240) async throws {
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
public struct ReadinessDocument: Decodable {
    public struct Check: Decodable {
        public var ready: Bool
        public var error: String?
    }
    public var status: String
    public var database: Check
    public var directory: Check
    public var warnings: [String]?

    public init(_ text: String) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(text.utf8))
    }
}
