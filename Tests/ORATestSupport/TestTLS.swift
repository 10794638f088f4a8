public import AsyncHTTPClient
public import Foundation
public import NIOSSL

/// The TLS the tests' servers serve: the throwaway CA and the certificate it signed for 127.0.0.1 and localhost
/// that `Deploy/dev/services up` makes (`ORA_TEST_TLS_*`), and what every client a test starts needs to trust it.
public enum TestTLS {
    /// The CA, the server's certificate chain and its key.
    public struct Files: Sendable {
        public var ca: String
        public var certificate: String
        public var key: String
    }

    /// The files, or nil when the environment does not name them (services started by an older script).
    public static let files: Files? = {
        let environment = ProcessInfo.processInfo.environment
        guard let ca = environment["ORA_TEST_TLS_CA_FILE"],
            let certificate = environment["ORA_TEST_TLS_CERTIFICATE_FILE"],
            let key = environment["ORA_TEST_TLS_KEY_FILE"], !ca.isEmpty, !certificate.isEmpty, !key.isEmpty
        else { return nil }
        return Files(ca: ca, certificate: certificate, key: key)
    }()

    /// The files, or why a server with TLS of its own cannot be started.
    public static func required() throws -> Files {
        guard let files else {
            throw TestSetupError(
                "ORA_TEST_TLS_CA_FILE, ORA_TEST_TLS_CERTIFICATE_FILE and ORA_TEST_TLS_KEY_FILE are not set: run the "
                    + "tests with Deploy/dev/test, or source the env file that Deploy/dev/services up prints")
        }
        return files
    }

    /// Added to the environment of every program a test starts: `ora` (`ORA_CA_FILE`) and Python's `ssl` and
    /// `requests` (schemathesis) verify the tests' servers with the test CA, as a client configured for a company's
    /// own CA would. (The agent is given it at enrollment, with `--ca-file`, as an administrator would.)
    public static let clientEnvironment: [String: String] = {
        guard let files else { return [:] }
        return ["ORA_CA_FILE": files.ca, "SSL_CERT_FILE": files.ca, "REQUESTS_CA_BUNDLE": files.ca]
    }()

    /// A client's TLS that verifies servers with the test CA (the system's CAs without one).
    public static var clientConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let files { tls.trustRoots = .file(files.ca) }
        return tls
    }

    /// The HTTP client of the tests' own requests: it verifies servers with the test CA.
    public static let httpClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = clientConfiguration
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()
}
