import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ORAServer
import ORATestSupport
import Prometheus
import Testing

/// The routes in process: the whole application, its services running on a fresh database and the test
/// directory, requests handed to its router without a socket.
@Suite("The routes, in process")
struct RouteTests {
    /// The application on `database`, with the test directory.
    static func application(on database: TestDatabase) throws -> some ApplicationProtocol {
        let services = database.services
        let text = """
            listen: {host: 127.0.0.1, port: 0}
            database:
              host: \(services.postgresHost)
              port: \(services.postgresPort)
              name: \(database.name)
              user: \(services.postgresUser)
              password_file: \(services.postgresPasswordFile)
              tls: disable
            directory:
              uris: ["\(services.ldapURI)"]
              base_dn: "\(services.ldapBaseDN)"
              bind_dn: "\(services.ldapBindDN)"
              password_file: \(services.ldapPasswordFile)
            screen: {relay_port: 0}
            """
        let configuration = try ConfigurationLoader().parse(text, file: "ora.yaml")
        return try ServerApplication.build(
            configuration: configuration, metrics: PrometheusCollectorRegistry(), logger: TestDatabase.logger)
    }

    /// The answer's body as a JSON object.
    static func object(_ response: TestResponse) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(response.body.readableBytesView))
    }

    static func json(_ text: String) -> ByteBuffer {
        ByteBuffer(string: text)
    }

    /// Logs `user` in through `client`.
    /// - Returns: the token.
    static func login(_ user: String, password: String, client: some TestClientProtocol) async throws -> String {
        let response = try await client.execute(
            uri: "/api/v1/login", method: .post, headers: [.contentType: "application/json"],
            body: json(#"{"user": "\#(user)", "password": "\#(password)"}"#))
        #expect(response.status == .ok)
        #expect(response.headers[.cacheControl] == "no-store")
        let login = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
        return try #require(login?["token"] as? String, "\(String(buffer: response.body))")
    }

    @Test("log in, read who you are, log out: the token stops working at once; each refusal in the error shape")
    func loginAndLogout() async throws {
        try await TestDatabase.with { database, _ in
            try await Self.application(on: database).test(.router) { client in
                #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
                let anonymous = try await client.execute(uri: "/api/v1/me", method: .get)
                #expect(anonymous.status == .unauthorized)
                #expect(anonymous.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                #expect(try Self.object(anonymous)["error"] == "invalid_token")

                let json: HTTPFields = [.contentType: "application/json"]
                let wrong = try await client.execute(
                    uri: "/api/v1/login", method: .post, headers: json,
                    body: Self.json(#"{"user": "lena.wolf", "password": "wrong"}"#))
                #expect(wrong.status == .unauthorized)
                #expect(try Self.object(wrong)["error"] == "invalid_credentials")
                let malformed = try await client.execute(
                    uri: "/api/v1/login", method: .post, headers: json, body: Self.json(#"{"user": 1}"#))
                #expect(malformed.status == .badRequest)
                #expect(try Self.object(malformed)["error"] == "invalid_request")

                let token = try await Self.login("lena.wolf", password: "ora-demo", client: client)
                let bearer: HTTPFields = [.authorization: "Bearer \(token)"]
                let me = try await client.execute(uri: "/api/v1/me", method: .get, headers: bearer)
                #expect(me.status == .ok)
                #expect(String(buffer: me.body).contains(#""account":"lena.wolf""#))
                // No machine of that name is enrolled: refused before the directory or the policy is asked.
                var both = bearer
                both.append(contentsOf: json)
                let offer = try await client.execute(
                    uri: "/api/v1/offers", method: .post, headers: both, body: Self.json(#"{"machine": "ws-9999"}"#))
                #expect(offer.status == .notFound)
                #expect(try Self.object(offer)["error"] == "unknown_machine")

                let logout = try await client.execute(uri: "/api/v1/logout", method: .post, headers: bearer)
                #expect(logout.status == .noContent)
                let after = try await client.execute(uri: "/api/v1/me", method: .get, headers: bearer)
                #expect(after.status == .unauthorized)
            }
        }
    }

    @Test("an unknown session id and a malformed one are refused alike, as unknown, in the error shape")
    func unknownSessions() async throws {
        try await TestDatabase.with { database, _ in
            try await Self.application(on: database).test(.router) { client in
                let token = try await Self.login("lena.wolf", password: "ora-demo", client: client)
                for id in [UUID().uuidString.lowercased(), "not-a-uuid"] {
                    let answer = try await client.execute(
                        uri: "/api/v1/sessions/\(id)", method: .get, headers: [.authorization: "Bearer \(token)"])
                    #expect(answer.status == .notFound, "\(id)")
                    #expect(try Self.object(answer)["error"] == "unknown_session", "\(id)")
                }
            }
        }
    }
}
