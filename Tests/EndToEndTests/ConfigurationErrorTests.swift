import Foundation
import ORATestSupport
import Testing

/// What an administrator sees when `ora-server` cannot use its configuration: one line, the file and the key,
/// a non-zero exit, and no stack trace.
@Suite("ora-server with bad configuration")
struct ConfigurationErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var content: String?
        var expected: String
        var testDescription: String { name }
    }

    static let validDatabase = """
        database: {host: 127.0.0.1, name: ora, user: ora, password_env: ORA_TEST_DB_SECRET, tls: disable}
        """
    static let validDirectory = """
        directory: {uris: ["ldap://127.0.0.1:1"], base_dn: "dc=corp,dc=example", bind_dn: "cn=x", password_env: ORA_TEST_DB_SECRET}
        """

    static let cases: [Case] = [
        Case(name: "missing file", content: nil, expected: "cannot read the configuration file: no such file"),
        Case(name: "bad YAML", content: "database: [oops\n", expected: ":2:1: not valid YAML"),
        Case(
            name: "unknown key",
            content: validDatabase + "\n" + validDirectory + "\nlisten: {hots: 0.0.0.0}\n",
            expected: ":3:10: listen.hots: unknown setting "
                + "(allowed here: behind_proxy, host, openings_per_address, port, tls)"),
        Case(
            name: "missing secret",
            content: validDatabase + "\n"
                + validDirectory.replacingOccurrences(of: ", password_env: ORA_TEST_DB_SECRET", with: "") + "\n",
            expected: "directory.password: is required"),
        Case(
            name: "secret from an unset variable",
            content: validDatabase.replacingOccurrences(of: "ORA_TEST_DB_SECRET", with: "ORA_TEST_UNSET") + "\n"
                + validDirectory + "\n",
            expected: "database.password_env: the environment variable ORA_TEST_UNSET is not set"),
    ]

    @Test("each mistake gives its message and exit code 2", arguments: cases)
    func badConfiguration(_ testCase: Case) async throws {
        let files = try TemporaryDirectory()
        let path: String
        if let content = testCase.content {
            path = try files.write("ora-server.yaml", content)
        } else {
            path = files.path + "/does-not-exist.yaml"
        }
        for arguments in [["--config", path], ["check-config", "--config", path], ["migrate", "--config", path]] {
            let result = await ChildProcess.runAsync(
                SourceTree.binary("ora-server"), arguments: arguments,
                environment: ["ORA_TEST_DB_SECRET": "very-secret-value"])
            #expect(result.status == 2, "\(arguments)")
            let lines = result.standardError.split(separator: "\n")
            #expect(lines.count == 1, "\(result.standardError)")
            #expect(lines.first?.hasPrefix("ora-server: error: \(path)") == true, "\(result.standardError)")
            #expect(result.standardError.contains(testCase.expected), "\(result.standardError)")
            #expect(!result.standardError.contains("very-secret-value"))
            #expect(!result.standardError.contains("Fatal error"))
        }
    }

    @Test("a valid file passes check-config")
    func validFile() async throws {
        let files = try TemporaryDirectory()
        let path = try files.write("ora-server.yaml", Self.validDatabase + "\n" + Self.validDirectory + "\n")
        let result = await ChildProcess.runAsync(
            SourceTree.binary("ora-server"), arguments: ["check-config", "--config", path],
            environment: ["ORA_TEST_DB_SECRET": "x"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput == "\(path): configuration is valid\n")
    }
}
