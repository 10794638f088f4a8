public import Hummingbird
public import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ORACore
import ORADirectory
import ORAStore
import PostgresNIO
public import Prometheus
import UnixSignals

/// Builds the ora-server HTTP application and the services that run with it.
public enum ServerApplication {
    /// The version this build reports in `/healthz` and the server instance table.
    public static let version = "0.1.0"

    /// Builds the application for `configuration`.
    ///
    /// Database migrations run before the HTTP server accepts connections; the PostgreSQL client and the
    /// instance heartbeat run as services beside the server, and all of them stop gracefully together.
    /// - Parameters:
    ///   - configuration: the loaded configuration.
    ///   - metrics: the registry `GET /metrics` reports; the executable bootstraps swift-metrics with it.
    ///   - logger: the server's logger.
    /// - Returns: the application, ready for `runService()`.
    /// - Throws: `ConfigurationError` when the database TLS settings cannot be used.
    public static func build(
        configuration: ServerConfiguration,
        metrics: PrometheusCollectorRegistry,
        logger: Logger
    ) throws(ConfigurationError) -> some ApplicationProtocol {
        let postgres = PostgresClient(
            configuration: try postgresConfiguration(configuration.database),
            backgroundLogger: logger
        )
        let probe = DatabaseProbe(configuration: try postgresProbeConfiguration(configuration.database), logger: logger)
        // libldap blocks while it waits for the directory, so its calls get threads of their own: enough for every
        // pooled connection to be busy while new logins bind.
        let directoryThreads = NIOThreadPool(numberOfThreads: max(8, configuration.directory.poolSize * 2))
        directoryThreads.start()
        let directory = DirectoryClient(settings: configuration.directory, threadPool: directoryThreads, logger: logger)
        if !configuration.directory.tls.verifyCertificates {
            logger.warning(
                """
                directory TLS certificate verification is OFF (directory.tls.insecure_skip_verify): anyone on the \
                network path can read operators' passwords. Use this in a lab only.
                """)
        }
        let policyStore = PolicyStore(client: postgres, logger: logger)
        let policies = PolicyService(store: policyStore, client: postgres, directory: directory, logger: logger)
        let operators = OperatorService(
            settings: configuration.operators,
            directory: directory,
            store: OperatorSessionStore(client: postgres, logger: logger),
            logger: logger,
            policyRoles: { policies.active.set.roles }
        )
        let readiness = ReadinessCheck(database: probe, directory: directory)
        let heartbeat = ServerInstanceHeartbeat(
            registry: ServerInstanceRegistry(client: postgres, logger: logger),
            version: version,
            logger: logger
        )

        let router = Router(context: ORARequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.addHealthRoutes(readiness: readiness, metrics: metrics)
        router.addOperatorRoutes(service: operators)
        router.addPolicyRoutes(policies: policies, operators: operators)

        var application = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.listen.host, port: configuration.listen.port),
                serverName: "ora-server"
            ),
            services: [postgres, heartbeat, policies],
            onServerRunning: { channel in
                logger.notice(
                    "ora-server listening",
                    metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "unknown")"]
                )
            },
            logger: logger
        )
        application.beforeServerStarts {
            // A direct connection fails fast with the real reason; the pool would retry for a minute first.
            try await probe.ping()
            let applied = try await Migrator(client: postgres, logger: logger).migrate()
            logger.info("database schema is current", metadata: ["migrations.applied": "\(applied.count)"])
            await heartbeat.beat()
            try await policies.reload()
        }
        return application
    }

    /// Builds the application and runs it until SIGTERM or SIGINT, then shuts down gracefully.
    /// - Throws: when the configuration cannot be used, migrations fail, or the server cannot listen.
    public static func run(
        configuration: ServerConfiguration,
        metrics: PrometheusCollectorRegistry,
        logger: Logger
    ) async throws {
        let application = try build(configuration: configuration, metrics: metrics, logger: logger)
        try await application.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }

    static func postgresProbeConfiguration(
        _ settings: DatabaseSettings
    ) throws(ConfigurationError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch settings.tls {
        case .disable:
            tls = .disable
        case .verifyFull:
            do {
                tls = .require(try NIOSSLContext(configuration: try tlsConfiguration(settings)))
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw .unreadableFile(
                    path: settings.caFile ?? "(system trust store)", reason: "cannot set up TLS: \(error)")
            }
        }
        var configuration = PostgresConnection.Configuration(
            host: settings.host,
            port: settings.port,
            username: settings.user,
            password: settings.password,
            database: settings.name,
            tls: tls
        )
        configuration.options.connectTimeout = .milliseconds(Int64(settings.connectTimeout / .milliseconds(1)))
        return configuration
    }

    static func tlsConfiguration(_ settings: DatabaseSettings) throws(ConfigurationError) -> TLSConfiguration {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.certificateVerification = .fullVerification
        if let caFile = settings.caFile {
            do {
                tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw .unreadableFile(path: caFile, reason: "not a readable PEM certificate file (database.ca_file)")
            }
        }
        return tlsConfiguration
    }

    static func postgresConfiguration(
        _ settings: DatabaseSettings
    ) throws(ConfigurationError) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch settings.tls {
        case .disable:
            tls = .disable
        case .verifyFull:
            tls = .require(try tlsConfiguration(settings))
        }
        var configuration = PostgresClient.Configuration(
            host: settings.host,
            port: settings.port,
            username: settings.user,
            password: settings.password,
            database: settings.name,
            tls: tls
        )
        configuration.options.connectTimeout = settings.connectTimeout
        configuration.options.maximumConnections = settings.maximumConnections
        return configuration
    }
}
