import Foundation

/// A private PostgreSQL started with `Deploy/dev/services`, so a test can stop and start it without disturbing the
/// database server other tests share.
public final class PrivatePostgres: @unchecked Sendable {
    /// Where its state lives.
    public let state: TemporaryDirectory
    /// Its port on 127.0.0.1.
    public let port: Int
    /// The file holding the `ora` role's password (the role owns the `ora` database).
    public let passwordFile: String

    /// Starts a new PostgreSQL with an empty `ora` database.
    public init() async throws {
        state = try TemporaryDirectory()
        var attempt = 0
        var port = 0
        while true {
            attempt += 1
            port = try BlackHoleListener().port
            let result = try await ChildProcess.run(
                SourceTree.root + "/Deploy/dev/services",
                arguments: ["up", "--only", "postgres", "--state", state.path],
                environment: ["ORA_PG_PORT": "\(port)"]
            )
            if result.status == 0 { break }
            guard attempt < 3 else { throw TestSetupError("private PostgreSQL did not start: \(result.standardError)") }
            _ = try? await ChildProcess.run(
                SourceTree.root + "/Deploy/dev/services",
                arguments: ["down", "--only", "postgres", "--state", state.path])
            try? FileManager.default.removeItem(atPath: state.path + "/postgres")
        }
        Leftovers.stopServiceAtExit(pidFile: state.path + "/postgres/data/postmaster.pid", signal: SIGINT)
        self.port = port
        passwordFile = state.path + "/postgres/ora-password"
    }

    deinit {
        state.stopService("postgres", pidFile: "postgres/data/postmaster.pid", signal: SIGINT)
    }

    /// Stops it (fast shutdown: connections are closed).
    public func stop() async throws {
        let result = try await ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services", arguments: ["down", "--only", "postgres", "--state", state.path])
        guard result.status == 0 else { throw TestSetupError("stopping PostgreSQL failed: \(result.standardError)") }
    }

    /// Starts it again with the same data.
    public func start() async throws {
        let result = try await ChildProcess.run(
            SourceTree.root + "/Deploy/dev/services", arguments: ["up", "--only", "postgres", "--state", state.path])
        guard result.status == 0 else { throw TestSetupError("starting PostgreSQL failed: \(result.standardError)") }
    }

    /// Runs SQL in the `ora` database as its owner and returns psql's unaligned output.
    public func sql(_ statement: String) async throws -> String {
        let password = try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
        let result = try await ChildProcess.run(
            "/usr/bin/psql",
            arguments: [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", "ora", "-d",
                "ora", "-c", statement,
            ],
            environment: ["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"]
        )
        guard result.status == 0 else { throw TestSetupError("psql failed: \(result.standardError)") }
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
