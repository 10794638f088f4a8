import Foundation
import Logging
import ORAServer
import Testing
import Yams

@Suite("The API's document")
struct APIDocumentTests {
    /// The package's root, found from this file's place in it.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The routes the server serves that are not part of the JSON API: the console's page and its files, for the
    /// browser.
    static let pages: Set<String> = [
        "GET /", "GET /login", "GET /login/link", "GET /machines", "GET /sessions", "GET /queue",
        "GET /invitations/open",
        "GET /sessions/{id}",
        "GET /sessions/{id}/view",
        "GET /console/{version}/{file}", "GET /audit", "GET /audit/sessions/{id}", "GET /policy", "GET /agents",
    ]

    static func configuration() throws -> ServerConfiguration {
        let text = """
            database: {host: 127.0.0.1, name: ora, user: ora, password_env: DB}
            directory: {uris: ["ldaps://127.0.0.1"], base_dn: "dc=x", bind_dn: "cn=svc,dc=x", password_env: LDAP}
            """
        return try ConfigurationLoader(environment: ["DB": "a", "LDAP": "b"]) { _ in "" }.parse(text, file: "ora.yaml")
    }

    /// Every operation of `Docs/openapi.yaml`, as "METHOD /path".
    static func documented() throws -> Set<String> {
        let text = try String(contentsOf: root.appendingPathComponent("Docs/openapi.yaml"), encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var operations: Set<String> = []
        for (path, item) in paths {
            let methods = try #require(item as? [String: Any], "\(path) is not a path item")
            for method in methods.keys
            where ["get", "put", "post", "delete", "patch", "head", "options"].contains(method) {
                operations.insert("\(method.uppercased()) \(path)")
            }
        }
        return operations
    }

    @Test("every route of the API is in the document, and every operation in the document is a route")
    func routesMatch() throws {
        let served = Set(
            try ServerApplication.routes(configuration: Self.configuration(), logger: Logger(label: "test")))
        let documented = try Self.documented()
        #expect(served.subtracting(Self.pages).subtracting(documented).sorted() == [], "served but not documented")
        #expect(documented.subtracting(served).sorted() == [], "documented but not served")
        #expect(Self.pages.isSubset(of: served), "a page left out of the document is no longer served")
    }

    @Test("every operation has an id, a summary, and answers in the one error shape for its refusals")
    func operations() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Docs/openapi.yaml"), encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var ids: [String] = []
        for (path, item) in paths {
            for (method, value) in item where ["get", "put", "post", "delete"].contains(method) {
                let operation = try #require(value as? [String: Any])
                let id = try #require(operation["operationId"] as? String, "\(method) \(path) has no operationId")
                ids.append(id)
                #expect(operation["summary"] is String, "\(id) has no summary")
                let responses = try #require(operation["responses"] as? [String: Any], "\(id) has no responses")
                for (status, response) in responses where status.hasPrefix("4") || status.hasPrefix("5") {
                    let text = "\(response)"
                    #expect(
                        text.contains("#/components/responses/") || text.contains("#/components/schemas/Error"),
                        "\(id) answers \(status) in a shape of its own")
                }
            }
        }
        #expect(Set(ids).count == ids.count, "operation ids are unique")
    }
}
