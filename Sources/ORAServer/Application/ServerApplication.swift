import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
public import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ORACore
import ORADirectory
import ORAMail
import ORAStore
public import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Builds the ora-server HTTP application and the services that run with it.
public enum ServerApplication {
    /// The version this build reports in `/healthz` and the server instance table.
    public static let version = "0.1.0"
    /// How this process names itself as the actor of events it records on its own: host and process id.
    /// How long a connection may take to send its first request head (the relay port: its opening line).
    static let requestHeadLimit = TimeAmount.seconds(10)
    /// How long a connection may stay open between two requests, or while a later request's head arrives.
    static let idleLimit = Duration.seconds(30)

    static let instanceName = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"

    /// Everything the server is made of, each part built from the ones before it.
    struct Components {
        let postgres: DatabaseClient
        let probe: DatabaseProbe
        let directoryThreads: ThreadPoolService
        let directory: DirectoryClient
        let auditWriter: AuditWriter
        let journal: AuditJournal
        let audit: AuditService
        let policyStore: PolicyStore
        let policies: PolicyService
        let operators: OperatorService
        let machines: MachineStore
        let instance: UUID
        let replicas: ReplicaStore
        let bus: ReplicaBus
        let chatCopies: ChatCopies
        let gateway: AgentGateway
        let agents: AgentService
        let machineDirectory: MachineDirectory
        let relay: ScreenRelay
        let broker: SessionBroker
        let deadlines: SessionDeadlines
        let screens: ScreenService
        let sessions: SessionRouting
        let invitations: InvitationDesk
        let queue: InvitationQueue
        let mailer: InvitationMailer
        let readiness: ReadinessCheck
        let console: ConsoleFiles
        let heartbeat: ServerInstanceHeartbeat
        let metrics: ServerMetrics

        init(
            configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger
        ) throws(ConfigurationError) {
            // The one clock every service reads the time from.
            let clock = ServerClock.system
            let endpoint = try configuration.database.endpoint()
            let postgres = endpoint.makeClient(logger: logger)
            let probe = endpoint.makeProbe(logger: logger)
            // libldap blocks while it waits for the directory, so its calls get threads of their own: enough for every
            // pooled connection to be busy while new logins bind.
            let directoryThreads = ThreadPoolService(threads: max(8, configuration.directory.poolSize * 2))
            let directory = DirectoryClient(
                settings: configuration.directory, threadPool: directoryThreads.pool, logger: logger,
                observer: { metrics.directory($0, took: $1, failed: $2) })
            for warning in configuration.directory.securityWarnings { logger.warning("\(warning)") }
            let auditWriter = AuditWriter(
                endpoint: endpoint, settings: configuration.audit.writer, metrics: metrics, logger: logger)
            if configuration.audit.journalPath == nil {
                logger.warning(
                    """
                    audit.journal is not set: events of ended sessions that cannot be written to the audit log at once \
                    are kept in memory only, and lost if the server stops before the database is back
                    """)
            }
            let journal: AuditJournal
            do {
                journal = try AuditJournal(
                    writer: auditWriter, log: AuditLog(client: postgres, logger: logger),
                    path: configuration.audit.journalPath, logger: logger)
            } catch {
                throw .auditJournal(error)
            }
            let audit = AuditService(
                log: AuditLog(client: postgres, logger: logger), settings: configuration.audit,
                instance: instanceName, logger: logger)
            let policyStore = PolicyStore(client: postgres, logger: logger)
            let machines = MachineStore(client: postgres, logger: logger)
            let policies = PolicyService(
                store: policyStore, directory: directory, machines: machines, clock: clock, logger: logger)
            let logins = LoginCache()
            let operators = OperatorService(
                settings: configuration.operators,
                directory: directory,
                store: OperatorSessionStore(client: postgres, logger: logger),
                audit: auditWriter,
                journal: journal,
                logger: logger,
                policyRoles: { policies.active.set.roles },
                clock: clock,
                logins: logins
            )
            let instance = UUID()
            let replicas = ReplicaStore(client: postgres, logger: logger)
            // Built in order, each from what it needs: the links the gateway keeps and the broker sends through,
            // the session table the broker, the offers and the deadlines share, the gateway that hands the agents'
            // messages on, and the bus that answers other replicas with all of them.
            let links = AgentLinks()
            let table = SessionTable(offersPerMinute: configuration.agents.offersPerMachinePerMinute)
            let sessionAudit = SessionAudit(writer: auditWriter, journal: journal, logger: logger, metrics: metrics)
            let relay = ScreenRelay(clock: clock, metrics: metrics, instance: instance)
            let chatCopies = ChatCopies(store: replicas, logger: logger)
            let broker = SessionBroker(
                table: table, links: links, audit: sessionAudit, screens: relay,
                copies: SessionCopies(store: replicas, instance: instance, logger: logger), clock: clock,
                logger: logger, chatRecording: configuration.audit.chatRecording, chatCopies: chatCopies)
            let intake = OfferIntake(
                machines: machines, directory: directory, policies: policies, table: table, links: links,
                broker: broker, audit: sessionAudit, clock: clock, logger: logger)
            let queue = InvitationQueue(
                store: InvitationQueueStore(client: postgres, logger: logger), intake: intake, replicas: replicas,
                audit: sessionAudit, instance: instance, clock: clock, logger: logger)
            let mailer = InvitationMailer(
                settings: configuration.mail, intake: intake, audit: sessionAudit, clock: clock, logger: logger)
            for warning in configuration.mail?.smtp.securityWarnings ?? [] { logger.warning("\(warning)") }
            let invitationDesk = InvitationDesk(
                intake: intake, links: links, audit: sessionAudit, clock: clock, logger: logger, queue: queue)
            let deadlines = SessionDeadlines(
                table: table, broker: broker, policies: policies, directory: directory, clock: clock, logger: logger)
            let gateway = AgentGateway(
                links: links,
                messages: AgentMessages(
                    table: table, broker: broker, machines: machines, clock: clock, logger: logger,
                    invitations: invitationDesk),
                broker: broker, machines: machines, replicas: replicas, instance: instance,
                settings: configuration.agents, clock: clock, logger: logger)
            let screens = ScreenService(
                broker: broker, links: links, relay: relay, clock: clock, logger: logger,
                publicPort: configuration.screen.publicRelayPort
            ) { [replicas, logger] issuer in
                do {
                    return try await replicas.relay(ofInstanceBeginning: issuer).map {
                        ScreenCarrier.Target(address: $0.address, keySHA256: $0.keySHA256)
                    }
                } catch {
                    logDatabaseFailure(error, doing: "finding the replica a screen leg belongs to", logger: logger)
                    return nil
                }
            }
            let bus = ReplicaBus(
                instance: instance, store: replicas, logger: logger, queueChanges: queue.changed, logins: logins
            ) { call in
                await SessionRouting.answer(
                    call, intake: intake, broker: broker, desk: invitationDesk, gateway: gateway, operators: operators,
                    screens: screens)
            }
            let agents = AgentService(
                store: machines, directory: directory, gateway: gateway, replicas: replicas, bus: bus,
                journal: journal, clock: clock, logger: logger)
            let machineDirectory = MachineDirectory(
                store: machines, directory: directory, policies: policies,
                refreshInterval: configuration.agents.directoryRefreshInterval, clock: clock, logger: logger)
            let sessions = SessionRouting(
                intake: intake, broker: broker, desk: invitationDesk, links: links, bus: bus, store: replicas,
                clock: clock, logger: logger)
            let readiness = ReadinessCheck(
                database: probe, directory: directory,
                warnings: { operators.administrationWarning.map { [$0] } ?? [] })
            if configuration.operators.roles.administrators.isEmpty {
                logger.warning(
                    """
                    roles.administrators is empty: only the groups the active policy names as administrators may \
                    administer ora, and until a policy names one nobody can; ora status says which it is
                    """)
            }
            let console = try ConsoleFiles.load()
            let heartbeat = ServerInstanceHeartbeat(
                id: instance,
                registry: ServerInstanceRegistry(client: postgres, logger: logger),
                version: version,
                logger: logger
            )
            metrics.read {
                var now = ServerMetrics.Current()
                now.agentsConnected = links.count
                (now.sessionsViewing, now.sessionsControlling) = table.activeCounts()
                now.screensOpen = relay.openConnections
                now.auditQueued = auditWriter.queued
                now.auditJournaled = journal.pendingCount
                now.policyVersion = Int(policies.active.activation?.version ?? 0)
                return now
            }
            self.metrics = metrics
            self.postgres = postgres
            self.probe = probe
            self.directoryThreads = directoryThreads
            self.directory = directory
            self.auditWriter = auditWriter
            self.journal = journal
            self.audit = audit
            self.policyStore = policyStore
            self.policies = policies
            self.operators = operators
            self.machines = machines
            self.instance = instance
            self.replicas = replicas
            self.bus = bus
            self.chatCopies = chatCopies
            self.gateway = gateway
            self.agents = agents
            self.machineDirectory = machineDirectory
            self.relay = relay
            self.broker = broker
            self.deadlines = deadlines
            self.screens = screens
            self.sessions = sessions
            self.invitations = invitationDesk
            self.queue = queue
            self.mailer = mailer
            self.readiness = readiness
            self.console = console
            self.heartbeat = heartbeat
        }

        /// The router of the API, the health endpoints and the pages (the browsers' screen WebSockets have their
        /// own).
        func router(configuration: ServerConfiguration) -> Router<ORARequestContext> {
            let router = Router(context: ORARequestContext.self)
            let listen = configuration.listen
            router.add(middleware: ClientAddressMiddleware(proxies: listen.behindProxy, ownTLS: listen.tls != nil))
            router.add(middleware: MetricsMiddleware())
            // Browsers keep to HTTPS once told over HTTPS: the server's own, or the proxy's that terminates it.
            if listen.tls != nil || listen.behindProxy != nil {
                router.add(middleware: StrictTransportSecurityMiddleware())
            }
            router.addHealthRoutes(readiness: readiness, metrics: metrics)
            router.addOperatorRoutes(service: operators)
            router.addPolicyRoutes(policies: policies, operators: operators)
            router.addAuditRoutes(audit: audit, operators: operators)
            router.addAgentRoutes(agents: agents, operators: operators)
            router.addSessionRoutes(
                sessions: sessions, screens: screens, machines: machineDirectory, operators: operators, audit: audit)
            router.addInvitationRoutes(sessions: sessions, queue: queue, mailer: mailer, operators: operators)
            router.addConsoleRoutes(files: console, novncPath: configuration.screen.novncPath)
            return router
        }
    }

    /// The routes `build` serves on the HTTP port, as "METHOD /path" with `{name}` for a parameter, sorted: what
    /// the API's document (`Docs/openapi.yaml`) is checked against. Nothing is connected to.
    public static func routes(
        configuration: ServerConfiguration, logger: Logger
    ) throws(ConfigurationError) -> [String] {
        let components = try Components(configuration: configuration, metrics: ServerMetrics(), logger: logger)
        let router = components.router(configuration: configuration)
        return router.routes.map { route in
            let path = route.path.components.map { component in
                let text = "\(component)"
                return text.hasPrefix(":") ? "{" + text.dropFirst() + "}" : text
            }
            return "\(route.method) /" + path.joined(separator: "/")
        }.sorted()
    }

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
        try build(configuration: configuration, metrics: metrics, logger: logger, watch: StoppingWatch())
    }

    /// `build(configuration:metrics:logger:)`, its services watched by `watch` while they stop.
    static func build(
        configuration: ServerConfiguration,
        metrics: PrometheusCollectorRegistry,
        logger: Logger,
        watch: StoppingWatch
    ) throws(ConfigurationError) -> some ApplicationProtocol {
        let components = try Components(
            configuration: configuration, metrics: ServerMetrics(registry: metrics), logger: logger)
        let (postgres, probe, policies, heartbeat) = (
            components.postgres, components.probe, components.policies, components.heartbeat
        )
        let (gateway, screens) = (components.gateway, components.screens)
        let router = components.router(configuration: configuration)
        let webSocketRouter = Router(context: ViewerSocketContext.self)
        webSocketRouter.addScreenRoutes(
            screens: screens, names: configuration.agents.serverNames, proxies: configuration.listen.behindProxy)
        let webSocketResponder = webSocketRouter.buildResponder()
        let openings = OpeningConnections(
            perAddress: configuration.listen.openingsPerAddress, proxies: configuration.listen.behindProxy)
        let tls: ServerTLS?
        do {
            tls = try configuration.listen.tls.map { try ServerTLS(settings: $0) }
        } catch {
            throw .unreadableFile(path: configuration.listen.tls?.certificateChainFile ?? "", reason: "\(error)")
        }
        let (screenSettings, listenHost) = (configuration.screen, configuration.listen.host)
        /// Where the other replicas reach this one's relay port (nil until it listens, or when they cannot).
        let replicaAddress: @Sendable () -> String? = { [screens] in
            screenSettings.replicaAddress(listenHost: listenHost, port: screens.relayPort)
        }
        heartbeat.announceRelay { (replicaAddress(), tls?.keySHA256) }
        let relayListener = ScreenRelayListener(
            host: configuration.listen.host,
            port: configuration.screen.relayPort(listening: configuration.listen.port),
            screens: screens, openings: openings, tls: tls, logger: logger
        ) {
            if let address = replicaAddress() {
                logger.notice("other replicas reach this screen relay at \(address)")
            } else {
                // Not a fault for a server that runs alone; with replicas, a screen held here is seen only here.
                logger.notice(
                    """
                    other replicas cannot reach this screen relay, which listens on a wildcard address: set \
                    screen.replica_host (or replica_host_env) if there are other replicas
                    """)
            }
            await heartbeat.beat()
        }
        var services: [any Service] = [
            components.directoryThreads, postgres, components.auditWriter, components.journal, heartbeat, policies,
            components.audit, components.bus, components.deadlines, components.sessions, relayListener, gateway,
            components.machineDirectory, components.chatCopies, components.queue,
        ]
        if let tls {
            services.append(ServerTLSReloader(tls: tls, logger: logger) { await heartbeat.beat() })
        }
        if let syslog = configuration.audit.syslog {
            services.append(
                AuditForwarder(
                    forwarding: AuditForwarding(client: postgres, logger: logger), settings: syslog, logger: logger))
        }

        var application = Application(
            router: router,
            // Agents' connections are served by the gateway's channel handlers; the rest (the API, the pages and
            // the browsers' screen WebSockets) by Hummingbird.
            server: HTTPServerBuilder { responder -> any ServerChildChannel in
                let channel = AgentAwareChildChannel(
                    inner: HTTP1WebSocketUpgradeChannel(
                        responder: responder, webSocketResponder: webSocketResponder,
                        configuration: .init(
                            http1: .init(idleTimeout: .init(idleLimit)),
                            ws: .init(maxFrameSize: AgentProtocol.maximumFrameSize))),
                    gateway: gateway, openings: openings)
                // With the server's own TLS, every connection of the port is TLS first.
                guard let tls else { return channel }
                return TLSChildChannel(base: channel, tls: tls)
            },
            configuration: .init(
                address: .hostname(configuration.listen.host, port: configuration.listen.port),
                serverName: "ora-server"
            ),
            // Stopped in reverse order: the directory threads, the database client and the audit writer outlive
            // their users.
            services: services.map(watch.watching),
            onServerRunning: { channel in
                logger.notice(
                    "ora-server listening",
                    metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "unknown")"]
                )
            },
            logger: logger
        )
        application.beforeServerStarts {
            try await DatabaseSetup.prepare(client: postgres, probe: probe, logger: logger)
            await heartbeat.beat()
            try await policies.reload()
        }
        return application
    }

    /// How long stopping may take before what is still running is cancelled: enough for agents' disconnections
    /// (`AgentGateway` waits 10 seconds at most) and for the audit events of the sessions that end to be written
    /// (`AuditWriter.Settings.writeTimeout`, twice), well inside a service manager's own limit (systemd's is 90 s).
    static let stoppingLimit = Duration.seconds(30)

    /// How long what is still running at `stoppingLimit` may take to end once cancelled, before the server exits
    /// without it: a stop always ends.
    static let cancellingLimit = Duration.seconds(10)

    /// Builds the application and runs it until SIGTERM or SIGINT, then shuts down gracefully, within
    /// `stoppingLimit`; what is still running then is cancelled, and if it has not ended `cancellingLimit` later,
    /// the process exits (status 1) saying what it was.
    /// - Throws: when the configuration cannot be used, migrations fail, or the server cannot listen;
    ///   `StoppingLimitExceeded` when stopping took longer than `stoppingLimit` and what was left was cancelled.
    public static func run(
        configuration: ServerConfiguration,
        metrics: PrometheusCollectorRegistry,
        logger: Logger
    ) async throws {
        let watch = StoppingWatch()
        let application = try build(configuration: configuration, metrics: metrics, logger: logger, watch: watch)
        let announcement = StoppingAnnouncement(
            limit: stoppingLimit, cancelling: cancellingLimit, watch: watch, logger: logger)
        var group = ServiceGroupConfiguration(
            // Stopped in reverse order: the announcement first.
            services: [application, announcement],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = stoppingLimit
        try await ServiceGroup(configuration: group).run()
        if announcement.stopped() { throw StoppingLimitExceeded(limit: stoppingLimit) }
    }
}

/// Stopping took longer than the server allows, and what was still running was cancelled.
public struct StoppingLimitExceeded: Error, CustomStringConvertible {
    /// The limit.
    public var limit: Duration

    /// Creates the error for `limit`.
    public init(limit: Duration) {
        self.limit = limit
    }

    public var description: String {
        "stopping took longer than \(limit.components.seconds) seconds; what was still running was cancelled"
    }
}

/// Says in the log when the server begins to stop and, if stopping takes longer than `limit` (after which the
/// service group cancels what is still running), that it did and what it waited for; if what was cancelled has not
/// ended `cancelling` later, exits the process.
private final class StoppingAnnouncement: Service, Sendable {
    private let limit: Duration
    private let cancelling: Duration
    private let watch: StoppingWatch
    private let logger: Logger
    /// The timer started when stopping begins, and whether it ran out.
    private let timer = Mutex<(task: Task<Void, Never>?, ranOut: Bool)>((nil, false))

    init(limit: Duration, cancelling: Duration, watch: StoppingWatch, logger: Logger) {
        self.limit = limit
        self.cancelling = cancelling
        self.watch = watch
        self.logger = logger
    }

    /// Stops the timer, once the server has stopped.
    /// - Returns: whether stopping went on past the limit.
    func stopped() -> Bool {
        timer.withLock { timer in
            timer.task?.cancel()
            return timer.ranOut
        }
    }

    func run() async {
        try? await gracefulShutdown()
        logger.notice("ora-server stopping")
        let task = Task.detached { [self] in
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            timer.withLock { $0.ranOut = true }
            logger.error(
                "ora-server did not stop within \(limit.components.seconds) seconds; what is still running is cancelled",
                metadata: ["waiting_for": "\(watch.waitingFor ?? "nothing")"])
            guard (try? await Task.sleep(for: cancelling)) != nil else { return }
            logger.critical(
                "ora-server did not stop when what was still running was cancelled; exiting without it",
                metadata: [
                    "waiting_for": "\(watch.waitingFor ?? "nothing")",
                    "still_running": "\(watch.stillRunning.joined(separator: ", "))",
                ])
            exit(EXIT_FAILURE)
        }
        timer.withLock { $0.task = task }
    }
}
