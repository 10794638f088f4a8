public import Foundation

/// `ora` as one operator, logged in with the demo password, with a home of its own.
public struct OperatorCLI: Sendable {
    public let ora: String
    public let environment: [String: String]
    public let home: TemporaryDirectory

    public init(_ user: String, server: RunningServer, ora: String) async throws {
        try await self.init(user, base: server.base, ora: ora)
    }

    /// `ora` as `user` of the server at `base`, with `environment` added to its own (`ORA_CA_FILE`, say).
    public init(_ user: String, base: String, ora: String, environment extra: [String: String] = [:]) async throws {
        home = try TemporaryDirectory()
        self.ora = ora
        environment = ["ORA_CONFIG_DIR": home.path, "ORA_SERVER": base, "HOME": home.path].merging(extra) { $1 }
        let login = await ChildProcess.runAsync(
            ora, arguments: ["login", "--user", user, "--password-stdin"], environment: environment,
            standardInput: "ora-demo\n")
        guard login.status == 0 else { throw TestSetupError("login as \(user): \(login.standardError)") }
    }

    public func run(_ arguments: String...) async -> ChildProcess.Result {
        await ChildProcess.runAsync(ora, arguments: arguments, environment: environment)
    }

    /// Runs `ora` with `arguments`, `input` on its standard input.
    public func run(_ arguments: [String], input: String) async -> ChildProcess.Result {
        await ChildProcess.runAsync(ora, arguments: arguments, environment: environment, standardInput: input)
    }
}

extension OperatorCLI {
    /// Starts `ora` with `arguments` and returns it running, for a command that goes on (`--watch`).
    public func start(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(ora, arguments: arguments, environment: environment)
    }
}
