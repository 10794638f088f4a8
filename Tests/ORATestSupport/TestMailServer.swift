public import Foundation

/// A real SMTP server of the test's own (aiosmtpd, through `Deploy/dev/mail-server`) on a free loopback port: it
/// offers STARTTLS with a certificate from a throwaway CA (or, `plain`, no TLS at all) and keeps every message it
/// accepts, for the test to read as a mail program would.
public final class TestMailServer: @unchecked Sendable {
    /// One message as it arrived, parsed by Python's `email` package.
    public struct Message: Decodable, Sendable {
        /// One attached file.
        public struct Attachment: Decodable, Sendable {
            public var name: String?
            public var type: String
            /// The file's bytes.
            public var content: Data
        }

        public var from: String
        public var to: String
        /// The subject, decoded.
        public var subject: String
        /// The text part, decoded.
        public var text: String?
        public var attachments: [Attachment]
        /// The names of its headers, in order.
        public var headers: [String]
    }

    /// Where its certificates and mailbox live.
    public let state: TemporaryDirectory
    /// Its port on 127.0.0.1.
    public let port: Int
    /// The CA that signed its certificate (for `localhost` and `127.0.0.1`).
    public var caFile: String { state.path + "/tls/ca.pem" }
    private let process: ChildProcess

    /// Starts it; without TLS when `plain`, refusing messages over `sizeLimit` bytes (552) when given.
    public init(plain: Bool = false, sizeLimit: Int? = nil) async throws {
        state = try TemporaryDirectory()
        let process = try ChildProcess(
            try Self.python(),
            arguments: [SourceTree.root + "/Deploy/dev/mail-server", "serve", state.path] + (plain ? ["--plain"] : [])
                + (sizeLimit.map { ["--size-limit", String($0)] } ?? []))
        self.process = process
        let portFile = state.path + "/port"
        let started = try await eventually(within: .seconds(30)) {
            FileManager.default.fileExists(atPath: portFile) || !process.isRunning
        }
        guard started, let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text) else {
            process.send(SIGKILL)
            throw TestSetupError("the mail server did not start: \(process.standardErrorSoFar)")
        }
        self.port = port
    }

    deinit {
        process.send(SIGTERM)
        let process = process
        let state = state
        // The directory goes once the server has stopped.
        DispatchQueue.global().async {
            _ = process.waitUntilExit(within: .seconds(10))
            withExtendedLifetime(state) {}
        }
    }

    /// The `mail:` section of a server configuration that sends through this server, from `ora@corp.example`.
    public var configuration: String {
        """

        mail:
          host: localhost
          port: \(port)
          ca_file: \(caFile)
          from: ora@corp.example
        """
    }

    /// Stops it, as a mail server that went down.
    public func stop() async {
        process.send(SIGTERM)
        _ = await process.exit(within: .seconds(10))
    }

    /// The messages delivered so far, oldest first.
    public func messages() async throws -> [Message] {
        let result = try await ChildProcess.run(
            try Self.python(), arguments: [SourceTree.root + "/Deploy/dev/mail-server", "read", state.path])
        guard result.status == 0 else { throw TestSetupError("reading the mailbox failed: \(result.standardError)") }
        return try JSONDecoder().decode([Message].self, from: Data(result.standardOutput.utf8))
    }

    private static func python() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["ORA_TEST_PYTHON"] else {
            throw TestSetupError("ORA_TEST_PYTHON is not set; run the tests with Deploy/dev/test")
        }
        return python
    }
}
