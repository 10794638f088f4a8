import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// What the benchmarks that hold many helpers' event streams at once share (`ChatBenchmark`, `QueueBenchmark`):
/// their clients' connections, the pace at which streams open, reading server-sent events, and the helpers and
/// computers they add to the development directory.
enum StreamingLoad {
    /// The connection pool of a benchmark's client: room for `connections` to the server, and idle connections closed
    /// by the client before the server's 30 seconds, so that a request never starts on one the server is closing.
    static func connectionPool(for connections: Int) -> HTTPClient.Configuration.ConnectionPool {
        HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(20), concurrentHTTP1ConnectionsPerHostSoftLimit: connections + 64)
    }

    /// Runs `body` for each of `items`, all at once but started 2 ms apart, until all end or one throws: the server
    /// refuses more than 128 connections of one address still sending their first request, so connections that
    /// each hold a stream are not opened in one instant.
    static func eachPaced<Item: Sendable>(
        _ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Void
    ) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for item in items {
                group.addTask { try await body(item) }
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    /// Notes a step on standard error, at once.
    static func progress(_ text: String) {
        FileHandle.standardError.write(Data(("… " + text + "\n").utf8))
    }

    /// Reads the server-sent events at `url` as `token`, passing each event's name and data to `handle`, until
    /// cancelled; `opened` counts the stream once the server answered.
    static func readEvents(
        _ http: HTTPClient, _ url: String, token: String, opened: Counter, _ handle: (String, String) -> Void
    ) async throws {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(3600))
        } catch {
            opened.fail("the event stream \(url): \(error)")
            throw error
        }
        guard response.status == .ok else {
            let body = (try? await response.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
            opened.fail("the event stream \(url): \(response.status) \(body)")
            throw BenchmarkError("the event stream \(url): \(response.status)")
        }
        opened.increment()
        var pending = ""
        for try await buffer in response.body {
            pending += String(buffer: buffer)
            while let end = pending.range(of: "\n\n") {
                let event = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                guard event.hasPrefix("event: "), let data = event.split(separator: "\n").last, data.hasPrefix("data: ")
                else { continue }
                let name = event.dropFirst(7).prefix { $0 != "\n" }
                handle(String(name), String(data.dropFirst(6)))
            }
        }
    }

    /// The string value of `name` in a flat JSON object.
    static func field(_ name: String, in json: String) -> String? {
        guard let data = json.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object[name] as? String
    }

    /// Adds the computer objects and helpers the benchmark needs to the development directory, unless there.
    static func addToDirectory(machines: [String], helpers: [String], environment: BenchmarkEnvironment) throws {
        // The demo password's hash, as Deploy/dev/directory.ldif has it for every person.
        let password = "{SSHA}4OBj7eOJL3qadwUS/8iHreNPKth2rEJA"
        var ldif = ""
        for machine in machines {
            ldif += """
                dn: cn=\(machine.uppercased()),ou=Workstations,ou=Computers,dc=corp,dc=example
                objectClass: device
                cn: \(machine.uppercased())
                ou: Workstations


                """
        }
        for helper in helpers {
            ldif += """
                dn: uid=\(helper),ou=People,dc=corp,dc=example
                objectClass: inetOrgPerson
                uid: \(helper)
                cn: Chat Helper \(helper.suffix(2))
                sn: Helper
                displayName: Chat Helper \(helper.suffix(2))
                userPassword: \(password)


                """
        }
        try ldap("/usr/bin/ldapadd", ldif, environment: environment)
        // One change per member: a change is all or nothing, and some may be members already.
        let members = helpers.map {
            "dn: cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example\nchangetype: modify\nadd: member\n"
                + "member: uid=\($0),ou=People,dc=corp,dc=example\n\n"
        }
        try ldap("/usr/bin/ldapmodify", members.joined(), environment: environment)
    }

    /// Runs `tool` as the directory's administrator with `ldif`; entries and members already there are passed over.
    private static func ldap(_ tool: String, _ ldif: String, environment: BenchmarkEnvironment) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = [
            "-c", "-x", "-H", environment.setting("ORA_LDAP_URI"), "-D", environment.setting("ORA_LDAP_ADMIN_DN"),
            "-y", environment.setting("ORA_LDAP_ADMIN_PASSWORD_FILE"),
        ]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        // Not waitUntilExit: its run loop can miss an end that came before it started.
        let ended = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in ended.signal() }
        try process.run()
        input.fileHandleForWriting.write(Data(ldif.utf8))
        try input.fileHandleForWriting.close()
        ended.wait()
        // 68: already exists, 20: the member is there already; with -c the rest go on.
        guard [0, 20, 68].contains(process.terminationStatus) else {
            throw BenchmarkError("\(tool) failed with status \(process.terminationStatus)")
        }
    }
}
