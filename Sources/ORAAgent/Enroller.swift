import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ORACore

/// Enrolls this machine with an ora server: makes a new device key, sends its public half with the machine's
/// name and the one-time token, and keeps the key only when the server accepted.
public struct Enroller: Sendable {
    /// The server's base URL.
    public var server: String
    /// The machine's name as the directory knows it.
    public var machine: String
    /// A CA file to verify the server's certificate with.
    public var caFile: String?

    /// Checks the arguments.
    /// - Throws: `AgentError.invalidArgument` for a server URL that is neither https:// nor http:// to loopback, or
    ///   an empty machine name.
    public init(server: String, machine: String, caFile: String?) throws(AgentError) {
        self.server = try Self.checkedServer(server)
        guard AgentProtocol.isReportable(machine) else {
            throw .invalidArgument("the machine name must be 1 to 200 characters without control characters")
        }
        self.machine = machine
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw .invalidArgument("cannot read the CA file \(caFile)")
        }
        self.caFile = caFile
    }

    /// Enrolls with `token` and saves the key and the enrollment in `state`.
    /// - Returns: the machine's name as the server enrolled it.
    public func enroll(token: String, state: AgentState) async throws(AgentError) -> String {
        let key = P256.Signing.PrivateKey()
        struct Body: Encodable {
            var token: String
            var machine: String
            var public_key: String
            var os: String
            var agent_version: String
        }
        struct Answer: Decodable {
            var name: String
        }
        let body = Body(
            token: token, machine: machine, public_key: DevicePublicKey.text(key.publicKey),
            os: Self.operatingSystem, agent_version: AgentInfo.version)
        let (status, data) = try await post("/agent/v1/enroll", body: (try? JSONEncoder().encode(body)) ?? Data())
        guard status == 201, let answer = try? JSONDecoder().decode(Answer.self, from: data) else {
            throw .refused(status: status, message: Self.message(in: data) ?? "unexpected answer")
        }
        try state.save(key: key, enrollment: .init(server: server, machine: answer.name, caFile: caFile))
        return answer.name
    }

    private func post(_ path: String, body: Data) async throws(AgentError) -> (Int, Data) {
        try await Self.post(server: server, caFile: caFile, path: path, body: body)
    }

    /// Sends `body` (JSON) to `server` + `path`, verifying the server with `caFile` when given (else the system's
    /// CAs).
    /// - Returns: the answer's status and body.
    /// - Throws: `AgentError.unreachable` when no answer comes.
    static func post(
        server: String, caFile: String?, path: String, body: Data, timeout: TimeAmount = .seconds(30)
    ) async throws(AgentError) -> (Int, Data) {
        var request = HTTPClientRequest(url: server + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let client =
            caFile == nil
            ? HTTPClient.shared
            : HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration(caFile: caFile))
        let result: Result<(Int, Data), AgentError>
        do {
            let response = try await client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 1 << 20)
            result = .success((Int(response.status.code), Data(bytes.readableBytesView)))
        } catch {
            result = .failure(.unreachable("cannot reach \(server): \(error)"))
        }
        if caFile != nil { try? await client.shutdown() }
        return try result.get()
    }

    /// A client configuration that verifies the server with `caFile` when given, else with the system's CAs.
    static func configuration(caFile: String?) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        return configuration
    }

    /// The server's error message in an error answer.
    static func message(in data: Data) -> String? {
        struct ErrorAnswer: Decodable { var message: String }
        return (try? JSONDecoder().decode(ErrorAnswer.self, from: data))?.message
    }

    /// `url` without a trailing slash, if it is https:// to a name, or http:// to this machine.
    static func checkedServer(_ url: String) throws(AgentError) -> String {
        guard let checked = ServerURL.checked(url) else { throw .invalidArgument(ServerURL.refusal(url)) }
        // The agent's connection checks the server's certificate by name (TLS's server name indication carries no
        // address), so an address would fail at every connection, long after enrolling seemed to work.
        if checked.hasPrefix("https://"), let host = URLComponents(string: checked)?.host,
            host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." })
        {
            throw .invalidArgument(
                "an https:// server is named as its certificate names it, not by an address (\(host)): \(url)")
        }
        return checked
    }

    /// The operating system's name from `/etc/os-release`, or the kernel's.
    static var operatingSystem: String {
        if let text = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PRETTY_NAME=") })
        {
            let value = line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if AgentProtocol.isReportable(value) { return value }
        }
        return ProcessInfo.processInfo.operatingSystemVersionString
    }
}
