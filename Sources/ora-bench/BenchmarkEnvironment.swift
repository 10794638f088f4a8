import Foundation
import Logging

/// The settings of `Deploy/dev/services`, from its env file.
struct BenchmarkEnvironment {
    private let values = ProcessInfo.processInfo.environment

    func setting(_ name: String) -> String {
        guard let value = values[name], !value.isEmpty else {
            FileHandle.standardError.write(
                Data("ora-bench: \(name) is not set; run Deploy/dev/services up and source its env file\n".utf8))
            exit(2)
        }
        return value
    }

    func secret(_ name: String) throws -> String {
        try String(contentsOfFile: setting(name), encoding: .utf8).trimmingCharacters(in: .newlines)
    }

    /// Runs `sql` as the PostgreSQL superuser.
    func psql(_ sql: String, database: String = "postgres") throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = [
            "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", setting("ORA_PG_HOST"), "-p", setting("ORA_PG_PORT"),
            "-U", setting("ORA_PG_SUPERUSER"), "-d", database, "-c", sql,
        ]
        process.environment = ["PGPASSWORD": try secret("ORA_PG_SUPERUSER_PASSWORD_FILE")]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError("psql failed: \(sql.prefix(80))") }
    }
}

extension BenchmarkEnvironment {
    /// Runs `sql` (given on standard input, so it may be long) as the PostgreSQL superuser in `database`, and returns
    /// what it printed, unaligned, one row a line, columns separated by `|`.
    func query(_ sql: String, database: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = [
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", setting("ORA_PG_HOST"), "-p", setting("ORA_PG_PORT"),
            "-U", setting("ORA_PG_SUPERUSER"), "-d", database, "-f", "-",
        ]
        process.environment = ["PGPASSWORD": try secret("ORA_PG_SUPERUSER_PASSWORD_FILE")]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(sql.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError("psql failed: \(sql.prefix(120))") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Duration {
    /// The duration in seconds, for printing.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension Logger {
    /// A logger for the benchmark's simulated clients, which reports only critical errors.
    static func quiet(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .critical
        return logger
    }
}
