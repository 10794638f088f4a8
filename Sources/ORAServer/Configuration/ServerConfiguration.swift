public import Logging
public import ORADirectory

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
    /// The least severe log level written.
    public var logLevel: Logger.Level

    /// Creates a configuration.
    public init(
        listen: ListenSettings,
        database: DatabaseSettings,
        directory: DirectorySettings,
        operators: OperatorService.Settings = .init(),
        logLevel: Logger.Level
    ) {
        self.listen = listen
        self.database = database
        self.directory = directory
        self.operators = operators
        self.logLevel = logLevel
    }
}

/// The address and port of the HTTP server.
public struct ListenSettings: Sendable, Hashable {
    /// The address to bind, `127.0.0.1` by default.
    public var host: String
    /// The TCP port, 8080 by default.
    public var port: Int

    /// Creates listen settings.
    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
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
        maximumConnections: Int = 20
    ) {
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
