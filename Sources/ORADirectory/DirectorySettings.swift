/// How ora reaches the directory: servers, TLS, the service account it reads with, where people, groups and
/// computers are, and its time, pool and cache limits.
public struct DirectorySettings: Sendable {
    /// LDAP URIs tried in order (`ldap://host:port`, `ldaps://host`).
    public var uris: [String]
    /// The DN under which everything is searched unless a more specific base is set.
    public var baseDN: String
    /// The service account ora binds as to read the directory.
    public var bindDN: String
    /// The service account's password. Never logged.
    public var bindPassword: String
    /// How connections are protected.
    public var tls: DirectoryTLS
    /// Where people, groups and computers are and how they are named.
    public var layout: DirectoryLayout
    /// How long to wait for a TCP connection to one server.
    public var connectTimeout: Duration
    /// How long to wait for the answer to one operation.
    public var operationTimeout: Duration
    /// The most idle service-account connections kept for reuse.
    public var poolSize: Int
    /// How long a resolved set of groups or a computer lookup is reused.
    public var cacheTTL: Duration
    /// The most entries the cache holds.
    public var cacheCapacity: Int
    /// The deepest group nesting followed.
    public var maximumGroupDepth: Int
    /// The most groups one resolution may return.
    public var maximumGroups: Int

    /// Creates settings.
    public init(
        uris: [String],
        baseDN: String,
        bindDN: String,
        bindPassword: String,
        tls: DirectoryTLS = DirectoryTLS(),
        layout: DirectoryLayout = .openLDAP,
        connectTimeout: Duration = .seconds(3),
        operationTimeout: Duration = .seconds(5),
        poolSize: Int = 8,
        cacheTTL: Duration = .seconds(30),
        cacheCapacity: Int = 10_000,
        maximumGroupDepth: Int = 16,
        maximumGroups: Int = 1_000
    ) {
        self.uris = uris
        self.baseDN = baseDN
        self.bindDN = bindDN
        self.bindPassword = bindPassword
        self.tls = tls
        self.layout = layout
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.poolSize = poolSize
        self.cacheTTL = cacheTTL
        self.cacheCapacity = cacheCapacity
        self.maximumGroupDepth = maximumGroupDepth
        self.maximumGroups = maximumGroups
    }
}

extension DirectorySettings {
    /// What about these settings puts operators' passwords at risk, one sentence each; empty when nothing does.
    /// The server logs each at every start, and `GET /readyz` (so `ora status`) shows them.
    public var securityWarnings: [String] {
        var warnings: [String] = []
        let plain = uris.filter { $0.lowercased().hasPrefix("ldap://") }
        if !plain.isEmpty, !tls.startTLS {
            warnings.append(
                "directory connections to \(plain.joined(separator: ", ")) are not encrypted (ldap:// without StartTLS): "
                    + "operators' passwords cross the network in clear text; use ldaps:// or directory.tls.start_tls: true"
            )
        }
        if !tls.verifyCertificates {
            warnings.append(
                "directory TLS certificate verification is OFF (directory.tls.insecure_skip_verify): anyone on the "
                    + "network path can read operators' passwords; use this in a lab only")
        }
        return warnings
    }
}

/// TLS for directory connections. `ldaps://` URIs always use TLS; `startTLS` upgrades `ldap://` connections.
public struct DirectoryTLS: Sendable, Hashable {
    /// Upgrade `ldap://` connections with StartTLS before binding; a server that refuses is an error, never a
    /// fallback to plain text.
    public var startTLS: Bool
    /// CA certificates (PEM) to verify servers with, instead of the system's.
    public var caFile: String?
    /// Verify the server's certificate and name. Turning this off is for labs only.
    public var verifyCertificates: Bool

    /// Creates TLS settings.
    public init(startTLS: Bool = false, caFile: String? = nil, verifyCertificates: Bool = true) {
        self.startTLS = startTLS
        self.caFile = caFile
        self.verifyCertificates = verifyCertificates
    }
}

/// Where people, groups and computers are in the directory, and which attributes name them.
public struct DirectoryLayout: Sendable, Hashable {
    /// How an operator's (or computer's) groups are found.
    public enum GroupMembership: String, Sendable, Hashable, CaseIterable {
        /// Search groups whose `member` or `uniqueMember` holds the DN, level by level (any directory).
        case member
        /// Read `memberOf` of the entry, then of each group, level by level (OpenLDAP memberof overlay, AD).
        case memberOf = "member-of"
        /// One search with Active Directory's in-chain matching rule (1.2.840.113556.1.4.1941).
        case inChain = "in-chain"
    }

    /// Where people are searched; the settings' base DN when `nil`.
    public var userBase: String?
    /// The filter that finds a person by what they type; `{user}` is replaced by the escaped input.
    public var userFilter: String
    /// The attribute holding the account name.
    public var accountAttribute: String
    /// The attribute holding the name to show.
    public var displayNameAttribute: String
    /// The attribute holding the e-mail address.
    public var mailAttribute: String
    /// The attribute holding a person's job title, shown to the person at the machine.
    public var titleAttribute: String
    /// The attribute holding a person's department, shown to the person at the machine.
    public var departmentAttribute: String
    /// Where groups are searched; the settings' base DN when `nil`.
    public var groupBase: String?
    /// How group membership is resolved.
    public var groupMembership: GroupMembership
    /// Where computers are searched; the settings' base DN when `nil`.
    public var computerBase: String?
    /// The filter that finds a computer by name; `{name}` is replaced by the escaped name.
    public var computerFilter: String
    /// The attribute holding a computer's name (a trailing `$` is removed).
    public var computerNameAttribute: String

    /// Creates a layout.
    public init(
        userBase: String? = nil,
        userFilter: String,
        accountAttribute: String,
        displayNameAttribute: String,
        mailAttribute: String = "mail",
        titleAttribute: String = "title",
        departmentAttribute: String = "department",
        groupBase: String? = nil,
        groupMembership: GroupMembership,
        computerBase: String? = nil,
        computerFilter: String,
        computerNameAttribute: String
    ) {
        self.userBase = userBase
        self.userFilter = userFilter
        self.accountAttribute = accountAttribute
        self.displayNameAttribute = displayNameAttribute
        self.mailAttribute = mailAttribute
        self.titleAttribute = titleAttribute
        self.departmentAttribute = departmentAttribute
        self.groupBase = groupBase
        self.groupMembership = groupMembership
        self.computerBase = computerBase
        self.computerFilter = computerFilter
        self.computerNameAttribute = computerNameAttribute
    }

    /// OpenLDAP with `inetOrgPerson` people (`uid`; the department in `ou`), `groupOfNames`/`groupOfUniqueNames`
    /// groups and `device` computers.
    public static let openLDAP = DirectoryLayout(
        userFilter: "(&(objectClass=inetOrgPerson)(uid={user}))",
        accountAttribute: "uid",
        displayNameAttribute: "displayName",
        departmentAttribute: "ou",
        groupMembership: .member,
        computerFilter: "(&(objectClass=device)(cn={name}))",
        computerNameAttribute: "cn"
    )

    /// Active Directory: people by `sAMAccountName` or `userPrincipalName`, nested groups with the in-chain rule,
    /// computers by `sAMAccountName` (which ends in `$`).
    public static let activeDirectory = DirectoryLayout(
        userFilter: "(&(objectClass=user)(|(sAMAccountName={user})(userPrincipalName={user})))",
        accountAttribute: "sAMAccountName",
        displayNameAttribute: "displayName",
        groupMembership: .inChain,
        computerFilter: "(&(objectClass=computer)(sAMAccountName={name}$))",
        computerNameAttribute: "sAMAccountName"
    )
}
