public import Crypto
public import Foundation
public import Logging
public import ORACore
public import ORADirectory
public import ORAMail

/// Everything `ora-server` needs to run, read from its YAML configuration file.
public struct ServerConfiguration: Sendable {
    /// Where the HTTP server listens.
    public var listen: ListenSettings
    /// The PostgreSQL database.
    public var database: DatabaseSettings
    /// The LDAP directory.
    public var directory: DirectorySettings
    /// Operator sessions, roles and login limits.
    public var operators: OperatorService.Settings
    /// The audit log: checkpoint signing, writing limits and SIEM forwarding.
    public var audit: AuditSettings
    /// Agent connections and offers.
    public var agents: AgentSettings
    /// The browser viewer.
    public var screen: ScreenSettings
    /// How invitations are sent by e-mail; `nil` when this server sends no mail.
    public var mail: MailSettings?
    /// The least severe log level written.
    public var logLevel: Logger.Level

    /// Creates a configuration.
    public init(
        listen: ListenSettings,
        database: DatabaseSettings,
        directory: DirectorySettings,
        operators: OperatorService.Settings = .init(),
        audit: AuditSettings = .init(),
        agents: AgentSettings = .init(),
        screen: ScreenSettings = .init(),
        mail: MailSettings? = nil,
        logLevel: Logger.Level
    ) {
        self.mail = mail
        self.audit = audit
        self.agents = agents
        self.screen = screen
        self.listen = listen
        self.database = database
        self.directory = directory
        self.operators = operators
        self.logLevel = logLevel
    }
}

/// How the server sends invitations by e-mail.
public struct MailSettings: Sendable, Hashable {
    /// The SMTP server and the sender.
    public var smtp: SMTPSettings
    /// The console's address as the helpers reach it (`https://ora.corp.example`), for the link in the mail; the
    /// address the machine enrolled with when `nil`.
    public var consoleURL: String?

    /// Creates mail settings.
    public init(smtp: SMTPSettings, consoleURL: String? = nil) {
        self.smtp = smtp
        self.consoleURL = consoleURL
    }
}

/// How agents connect and how often a machine may be offered help.
public struct AgentSettings: Sendable, Hashable {
    /// The names agents may address this server by (the host of the URL they enrolled with). An agent signs its
    /// authentication over the name it used, so a server under another name cannot relay it.
    public var serverNames: [String]
    /// How many offers one machine may receive per minute, so that nobody at a machine is flooded with questions.
    public var offersPerMachinePerMinute: Int
    /// How often a connected agent is pinged; one that has not answered by the next ping is disconnected, so a
    /// machine that vanished without closing its connection is offline after at most twice this.
    public var pingInterval: Duration
    /// How old a machine's directory facts (its OU and computer groups, which the machine list searches and
    /// decides with) may grow before they are looked up again. An offer always asks the directory itself.
    public var directoryRefreshInterval: Duration
    /// How often the server checks that every agent connected to it is still enrolled with the key it proved:
    /// revoking or re-keying a machine closes its agent's connection at once, and this check closes one whose
    /// closing could not reach this server (another replica revoked it while the two could not talk).
    public var enrollmentCheckInterval: Duration

    /// Creates agent settings.
    public init(
        serverNames: [String] = ["localhost", "127.0.0.1", "::1"], offersPerMachinePerMinute: Int = 3,
        pingInterval: Duration = .seconds(30), directoryRefreshInterval: Duration = .seconds(900),
        enrollmentCheckInterval: Duration = .seconds(60)
    ) {
        self.serverNames = serverNames
        self.offersPerMachinePerMinute = offersPerMachinePerMinute
        self.pingInterval = pingInterval
        self.directoryRefreshInterval = directoryRefreshInterval
        self.enrollmentCheckInterval = enrollmentCheckInterval
    }
}

/// The screen relay's port and the browser viewer's files.
public struct ScreenSettings: Sendable, Hashable {
    /// The directory of noVNC (`core/rfb.js` inside), Debian's `novnc` package by default.
    public var novncPath: String
    /// The relay port for agents and native viewers, on the listen address; nil for the HTTP port + 1, 0 for
    /// any free port.
    public var relayPort: Int?
    /// The address the other replicas reach this one's relay port at, to carry a viewer to the replica that holds
    /// the machine's agent (`screen.replica_host`, or the variable `screen.replica_host_env` names); the listen
    /// address when nil, unless that is a wildcard.
    public var replicaHost: String?
    /// The relay port agents and native viewers are told to connect to, when a load balancer in front of the
    /// server listens on another port than the server does (`screen.public_relay_port`); the relay port when nil.
    public var publicRelayPort: Int?

    /// Creates screen settings.
    public init(
        novncPath: String = "/usr/share/novnc", relayPort: Int? = nil, replicaHost: String? = nil,
        publicRelayPort: Int? = nil
    ) {
        self.novncPath = novncPath
        self.relayPort = relayPort
        self.replicaHost = replicaHost
        self.publicRelayPort = publicRelayPort
    }

    /// Where the other replicas reach a relay port `port` bound on `listenHost`, as `host:port`; nil when the port
    /// is not bound yet, or when no address was set and the listen address is a wildcard (it names no machine).
    public func replicaAddress(listenHost: String, port: Int) -> String? {
        guard port > 0 else { return nil }
        let host = replicaHost ?? (["0.0.0.0", "::", "", "*"].contains(listenHost) ? nil : listenHost)
        guard let host else { return nil }
        return host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The relay port for a server listening on `port`: the one set, else the HTTP port + 1, or any free port when
    /// the HTTP port is 0 or 65535.
    public func relayPort(listening port: Int) -> Int {
        relayPort ?? (port == 0 || port == 65535 ? 0 : port + 1)
    }
}

/// The address and port of the HTTP server.
public struct ListenSettings: Sendable, Hashable {
    /// The address to bind, `127.0.0.1` by default.
    public var host: String
    /// The TCP port, 8080 by default.
    public var port: Int
    /// The server's own TLS on the HTTP port and the relay port; plain TCP when not set.
    public var tls: ListenTLSSettings?
    /// The proxies that terminate TLS in front of the server (`listen.behind_proxy`), whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed; nil when clients reach the server directly.
    public var behindProxy: TrustedProxies?
    /// The most connections one address may have open without having sent their opening yet (the first request's
    /// head, or the relay's opening line), `listen.openings_per_address`; 128 by default. Many agents behind one NAT
    /// address that reconnect together, after a restart, are held to it.
    public var openingsPerAddress: Int

    /// Creates listen settings.
    public init(
        host: String = "127.0.0.1", port: Int = 8080, tls: ListenTLSSettings? = nil,
        behindProxy: TrustedProxies? = nil, openingsPerAddress: Int = 128
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.behindProxy = behindProxy
        self.openingsPerAddress = openingsPerAddress
    }
}

/// The files of the server's own TLS (`listen.tls`), read at start and again on SIGHUP.
public struct ListenTLSSettings: Sendable, Hashable {
    /// PEM: the server's certificate, then the intermediate certificates.
    public var certificateChainFile: String
    /// PEM: its private key, readable by the server alone.
    public var privateKeyFile: String

    public init(certificateChainFile: String, privateKeyFile: String) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
    }
}

/// How the server reaches PostgreSQL.
public struct DatabaseSettings: Sendable {
    /// How the connection is protected.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP, for loopback and development only.
        case disable
        /// TLS, with the server's certificate verified against the CA file or the system's trust store.
        case verifyFull = "verify-full"
    }

    /// Host name or address.
    public var host: String
    /// TCP port.
    public var port: Int
    /// Database name.
    public var name: String
    /// Role name.
    public var user: String
    /// The role's password. Never logged.
    public var password: String
    /// TLS mode.
    public var tls: TLSMode
    /// CA certificates (PEM) to verify the server with, instead of the system's trust store.
    public var caFile: String?
    /// How long to wait for a connection.
    public var connectTimeout: Duration
    /// The most connections this server opens.
    public var maximumConnections: Int
    /// How long a request waits for the database before it is refused with 503.
    public var queryTimeout: Duration

    /// Creates database settings.
    public init(
        host: String,
        port: Int,
        name: String,
        user: String,
        password: String,
        tls: TLSMode,
        caFile: String? = nil,
        connectTimeout: Duration = .seconds(5),
        maximumConnections: Int = 20,
        queryTimeout: Duration = .seconds(5)
    ) {
        self.queryTimeout = queryTimeout
        self.host = host
        self.port = port
        self.name = name
        self.user = user
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.maximumConnections = maximumConnections
    }
}

/// How the server keeps the audit log.
public struct AuditSettings: Sendable {
    /// The raw Ed25519 private key checkpoints are signed with; without one, no checkpoints are made.
    public var signingKeySeed: Data?
    /// How often a checkpoint of the chain head is signed and stored (when the chain grew).
    public var checkpointInterval: Duration
    /// Batching and time limits of the writer.
    public var writer: AuditWriter.Settings
    /// Where events are forwarded, if anywhere.
    public var syslog: SyslogSettings?
    /// The file that keeps the events of ended access until the audit log has them (`AuditJournal`); `nil` keeps
    /// them in memory only.
    public var journalPath: String?
    /// How chat lines are kept: as typed (the default) or only their digest.
    public var chatRecording: ChatRecording = .text

    /// The key checkpoints are signed with.
    public var signingKey: Curve25519.Signing.PrivateKey? {
        get { signingKeySeed.flatMap { try? Curve25519.Signing.PrivateKey(rawRepresentation: $0) } }
        set { signingKeySeed = newValue?.rawRepresentation }
    }

    /// Creates audit settings.
    public init(
        signingKey: Curve25519.Signing.PrivateKey? = nil,
        checkpointInterval: Duration = .seconds(3600),
        writer: AuditWriter.Settings = .init(),
        syslog: SyslogSettings? = nil
    ) {
        self.signingKeySeed = signingKey?.rawRepresentation
        self.checkpointInterval = checkpointInterval
        self.writer = writer
        self.syslog = syslog
    }
}

/// A syslog collector (RFC 5424 over TCP, optionally TLS, framed by octet counting).
public struct SyslogSettings: Sendable {
    /// The collector's host.
    public var host: String
    /// The collector's port.
    public var port: Int
    /// Whether to speak TLS (RFC 5425).
    public var tls: Bool
    /// CA certificates to verify the collector with, instead of the system's.
    public var caFile: String?
    /// The HOSTNAME field of every message.
    public var hostname: String
    /// The syslog facility.
    public var facility: Int

    /// Creates syslog settings.
    public init(host: String, port: Int, tls: Bool = false, caFile: String? = nil, hostname: String, facility: Int = 13)
    {
        self.host = host
        self.port = port
        self.tls = tls
        self.caFile = caFile
        self.hostname = hostname
        self.facility = facility
    }

    /// The name the forwarding position is stored under.
    var destination: String { "syslog://\(host):\(port)" }
}
