/// How ora reaches the directory: servers, the service account it reads with, and its time limits.
public struct DirectorySettings: Sendable {
    /// LDAP URIs tried in order (`ldap://host:port`, `ldaps://host`).
    public var uris: [String]
    /// The DN under which people, groups and computers are searched.
    public var baseDN: String
    /// The service account ora binds as to read the directory.
    public var bindDN: String
    /// The service account's password. Never logged.
    public var bindPassword: String
    /// How long to wait for a TCP connection to one server.
    public var connectTimeout: Duration
    /// How long to wait for the answer to one operation.
    public var operationTimeout: Duration

    /// Creates settings.
    public init(
        uris: [String],
        baseDN: String,
        bindDN: String,
        bindPassword: String,
        connectTimeout: Duration = .seconds(3),
        operationTimeout: Duration = .seconds(5)
    ) {
        self.uris = uris
        self.baseDN = baseDN
        self.bindDN = bindDN
        self.bindPassword = bindPassword
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
    }
}
