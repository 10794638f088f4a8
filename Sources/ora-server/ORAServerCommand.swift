import ArgumentParser
import Foundation
import Logging
import Metrics
import ORAServer
import ORAStore
import Prometheus

@main
struct ORAServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ora-server",
        abstract: "The ora management server: offers of remote assistance, policy and audit.",
        version: ServerApplication.version,
        subcommands: [Serve.self, Migrate.self, CheckConfig.self, DetachAuditPartitions.self],
        defaultSubcommand: Serve.self
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The YAML configuration file.")
    var config: String = "/etc/ora/ora-server.yaml"
}

extension ORAServerCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the server (the default): migrate the database, then serve until SIGTERM or SIGINT.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try loadConfiguration(options.config)
            let logger = bootstrapLogging(level: configuration.logLevel)
            raiseOpenFileLimit(logger: logger)
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            try await failing {
                try await ServerApplication.run(configuration: configuration, metrics: registry, logger: logger)
            }
            logger.notice("ora-server stopped")
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring the database schema up to date and exit.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try loadConfiguration(options.config)
            let logger = bootstrapLogging(level: configuration.logLevel)
            try await failing {
                let applied = try await ServerApplication.migrate(configuration: configuration, logger: logger)
                print(
                    applied.isEmpty
                        ? "database schema is current"
                        : "applied migrations: \(applied.map(String.init).joined(separator: ", "))")
            }
        }
    }

    struct DetachAuditPartitions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "detach-audit-partitions",
            abstract: "Retention: detach the audit log's month partitions that end by a date, recording it in the log.",
            discussion: """
                Run with a configuration whose database role owns the audit log. Each detached month becomes an \
                ordinary table (audit_events_YYYY_MM) to archive with pg_dump and then drop. See Docs/Audit.md.
                """)

        @OptionGroup var options: ConfigOption
        @Option(help: "Detach the months that end on or before this date (YYYY-MM-DD).") var before: String

        func run() async throws {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            guard let date = formatter.date(from: before) else {
                printError("--before must be a date such as 2026-06-01, not \"\(before)\"")
                throw ExitCode(64)
            }
            let configuration = try loadConfiguration(options.config)
            let logger = bootstrapLogging(level: configuration.logLevel)
            try await failing {
                let detached = try await ServerApplication.detachAuditPartitions(
                    endingBy: date, configuration: configuration, logger: logger)
                if detached.isEmpty { print("no audit partition ends by \(before); nothing was detached") }
                for partition in detached {
                    print(
                        "detached \(partition.table): \(partition.events) events "
                            + "(\(partition.firstSequence)–\(partition.lastSequence)); archive it with "
                            + "pg_dump -t \(partition.table), then DROP TABLE \(partition.table)")
                }
            }
        }
    }

    struct CheckConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-config",
            abstract: "Validate the configuration file and the secrets it refers to, and exit.")

        @OptionGroup var options: ConfigOption

        func run() async throws {
            _ = try loadConfiguration(options.config)
            print("\(options.config): configuration is valid")
        }
    }
}

/// Loads the configuration or exits with one line naming the file, the key and the problem.
func loadConfiguration(_ path: String) throws -> ServerConfiguration {
    do {
        return try ConfigurationLoader().load(path: path)
    } catch {
        printError(error.description)
        throw ExitCode(2)
    }
}

/// Runs `body`; any error becomes one line on standard error and exit code 1, never a stack trace.
func failing(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        printError(ServerErrorDescription.describe(error))
        throw ExitCode(1)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("ora-server: error: \(message)\n".utf8))
}

func bootstrapLogging(level: Logger.Level) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "ora-server")
    logger.logLevel = level
    return logger
}

/// Raises the limit of open files to the most the system allows this process: each connected agent holds one, and
/// service managers and container runtimes often start processes with a soft limit of 1,024 however high the hard
/// limit is.
func raiseOpenFileLimit(logger: Logger) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    let before = limit.rlim_cur
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 { limit.rlim_cur = before }
    }
    logger.info(
        "open files: at most \(limit.rlim_cur)",
        metadata: before == limit.rlim_cur ? [:] : ["raised_from": "\(before)"])
    if limit.rlim_cur < 4096 {
        logger.warning(
            """
            this process may open only \(limit.rlim_cur) files, and each connected agent needs one: raise the hard \
            limit (LimitNOFILE= in the systemd unit, the container runtime's ulimit)
            """)
    }
}
