public import Foundation
import Logging
public import ORACore
import ORADirectory
import ORAMail

/// Reads `ora-server`'s YAML configuration strictly: unknown keys, wrong types and missing settings are errors that
/// name the file, the line and the key.
///
/// Secrets (passwords) are never needed on the command line. Each can be given as `password` (inline, discouraged),
/// `password_file` (a file holding only the secret) or `password_env` (the name of an environment variable).
public struct ConfigurationLoader: Sendable {
    private let environment: [String: String]
    private let readFile: @Sendable (String) throws -> String

    /// Creates a loader.
    /// - Parameters:
    ///   - environment: the environment secrets are read from; the process's own by default.
    ///   - readFile: reads a file's text; the real file system by default.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        readFile: @escaping @Sendable (String) throws -> String = ConfigurationLoader.readTextFile
    ) {
        self.environment = environment
        self.readFile = readFile
    }

    /// Reads the file at `path` and the secrets it refers to.
    /// - Throws: `ConfigurationError` naming the file, position and key.
    public func load(path: String) throws(ConfigurationError) -> ServerConfiguration {
        let text: String
        do {
            text = try readFile(path)
        } catch {
            throw .unreadableFile(path: path, reason: Self.reason(error))
        }
        do {
            return try parse(text, file: path)
        } catch {
            throw .invalid(error)
        }
    }

    /// Parses configuration `text` that came from `file`.
    public func parse(_ text: String, file: String) throws(YAMLError) -> ServerConfiguration {
        guard let root = try YAMLNode.parse(text, file: file) else {
            throw YAMLError(file: file, location: nil, keyPath: "", message: "the configuration file is empty")
        }
        var settings = try root.mapping()

        var listen = ListenSettings()
        if let node = settings.optional("listen") {
            var section = try node.mapping()
            if let host = section.optional("host") { listen.host = try host.nonEmptyString() }
            if let port = section.optional("port") { listen.port = try port.integer(in: 0...65535) }
            if let openings = section.optional("openings_per_address") {
                listen.openingsPerAddress = try openings.integer(in: 1...100_000)
            }
            if let node = section.optional("tls") {
                var tls = try node.mapping()
                let settings = ListenTLSSettings(
                    certificateChainFile: try tls.required("certificate_chain_file").nonEmptyString(),
                    privateKeyFile: try tls.required("private_key_file").nonEmptyString())
                try tls.rejectUnknownKeys()
                // Read now, so that check-config finds a wrong file or a key that is not the certificate's.
                do {
                    _ = try ServerTLS.context(settings)
                } catch {
                    throw node.error("the certificate and key cannot be used: \(error)")
                }
                listen.tls = settings
            }
            if let node = section.optional("behind_proxy") {
                var proxy = try node.mapping()
                let trusted = try proxy.required("trusted")
                let entries = try trusted.list().map { node throws(YAMLError) in try node.nonEmptyString() }
                do {
                    listen.behindProxy = try TrustedProxies(entries)
                } catch {
                    throw trusted.error(error.description)
                }
                try proxy.rejectUnknownKeys()
            }
            try section.rejectUnknownKeys()
            // Logins, tokens, device keys and screens must not cross the network in clear.
            if listen.tls == nil, listen.behindProxy == nil, !TrustedProxies.isLoopback(host: listen.host) {
                throw (section.optional("host") ?? node).error(
                    "plain HTTP is served only on loopback, and \(listen.host) is not: set listen.tls for the server's "
                        + "own TLS, or listen.behind_proxy when a proxy in front terminates TLS")
            }
        }

        let database = try databaseSettings(try settings.required("database"))
        let directory = try directorySettings(try settings.required("directory"))
        var operators = try operatorSettings(&settings)
        operators.databaseTimeout = database.queryTimeout
        let audit = try settings.optional("audit").map(auditSettings) ?? AuditSettings()
        var agents = AgentSettings(serverNames: [listen.host, "localhost", "127.0.0.1", "::1"])
        if let node = settings.optional("agents") {
            var section = try node.mapping()
            if let names = section.optional("server_names") {
                agents.serverNames = try names.list().map { node throws(YAMLError) in try node.nonEmptyString() }
            }
            if let limit = section.optional("offers_per_machine_per_minute") {
                agents.offersPerMachinePerMinute = try limit.integer(in: 1...600)
            }
            if let interval = section.optional("ping_interval") {
                agents.pingInterval = try interval.duration(in: .seconds(1) ... .seconds(600))
            }
            if let interval = section.optional("directory_refresh_interval") {
                agents.directoryRefreshInterval = try interval.duration(in: .seconds(10) ... .seconds(86_400))
            }
            if let interval = section.optional("enrollment_check_interval") {
                agents.enrollmentCheckInterval = try interval.duration(in: .seconds(1) ... .seconds(3600))
            }
            try section.rejectUnknownKeys()
        }
        operators.browserNames = agents.serverNames

        var screen = ScreenSettings()
        if let node = settings.optional("screen") {
            var section = try node.mapping()
            if let path = section.optional("novnc_path") { screen.novncPath = try path.nonEmptyString() }
            if let port = section.optional("relay_port") { screen.relayPort = try port.integer(in: 0...65535) }
            if let port = section.optional("public_relay_port") {
                screen.publicRelayPort = try port.integer(in: 1...65535)
            }
            let host = section.optional("replica_host")
            let hostVariable = section.optional("replica_host_env")
            if let host, hostVariable != nil {
                throw host.error("give only one of replica_host and replica_host_env")
            }
            if let host { screen.replicaHost = try host.nonEmptyString() }
            if let hostVariable {
                let variable = try hostVariable.nonEmptyString()
                guard let value = environment[variable], !value.isEmpty else {
                    throw hostVariable.error("the environment variable \(variable) is not set")
                }
                screen.replicaHost = value
            }
            try section.rejectUnknownKeys()
        }

        let mail = try settings.optional("mail").map(mailSettings)

        var logLevel = Logger.Level.info
        if let node = settings.optional("log") {
            var section = try node.mapping()
            if let level = section.optional("level") {
                let name = try level.choice(Logger.Level.allCases.map(\.rawValue))
                logLevel = Logger.Level(rawValue: name) ?? .info
            }
            try section.rejectUnknownKeys()
        }
        try settings.rejectUnknownKeys()
        return ServerConfiguration(
            listen: listen, database: database, directory: directory, operators: operators, audit: audit,
            agents: agents, screen: screen, mail: mail, logLevel: logLevel)
    }

    private func mailSettings(_ node: YAMLNode) throws(YAMLError) -> MailSettings {
        var section = try node.mapping()
        let hostNode = try section.required("host")
        let host = try hostNode.nonEmptyString()
        let fromNode = try section.required("from")
        let fromText = try fromNode.nonEmptyString()
        let from: MailAddress
        do {
            from = try MailAddress(fromText)
        } catch {
            throw fromNode.error(error.description)
        }
        var smtp = SMTPSettings(host: host, from: from, helloName: ProcessInfo.processInfo.hostName)
        if let port = section.optional("port") { smtp.port = try port.integer(in: 1...65535) }
        if let node = section.optional("security") {
            smtp.security = SMTPSettings.Security(
                rawValue: try node.choice(SMTPSettings.Security.allCases.map(\.rawValue)))!
            // Without TLS, an invitation (and a login to the relay) may cross only this host's loopback.
            guard smtp.security == .startTLS || ["localhost", "127.0.0.1", "::1"].contains(host.lowercased()) else {
                throw node.error("none is allowed only for a relay on this host (localhost); use starttls for \(host)")
            }
        }
        smtp.caFile = try section.optional("ca_file").map(certificateFile)
        if let node = section.optional("verify_certificates") { smtp.verifyCertificates = try node.bool() }
        if let node = section.optional("username") {
            smtp.username = try node.nonEmptyString()
            guard smtp.security == .startTLS else {
                throw node.error("a login to the mail server is sent only over TLS: set security: starttls")
            }
            smtp.password = try secret(in: &section, named: "password")
        }
        if let name = section.optional("from_name") { smtp.fromName = try name.nonEmptyString() }
        if let name = section.optional("hello_name") { smtp.helloName = try name.nonEmptyString() }
        if let timeout = section.optional("timeout") {
            smtp.timeout = try timeout.duration(in: .seconds(1) ... .seconds(300))
        }
        var result = MailSettings(smtp: smtp)
        if let node = section.optional("console_url") {
            let text = try node.nonEmptyString()
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
                url.query == nil, url.fragment == nil
            else { throw node.error("expected the console's address, such as https://ora.corp.example") }
            result.consoleURL = text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        try section.rejectUnknownKeys()
        return result
    }

    private func auditSettings(_ node: YAMLNode) throws(YAMLError) -> AuditSettings {
        var section = try node.mapping()
        var result = AuditSettings()
        if let keyNode = section.optional("signing_key_file") {
            let path = try keyNode.nonEmptyString()
            let pem: String
            do {
                pem = try readFile(path)
            } catch {
                throw keyNode.error("cannot read the signing key \(path): \(Self.reason(error))")
            }
            do {
                result.signingKey = try AuditSigningKey.privateKey(pem: pem)
            } catch {
                throw keyNode.error("\(path): \(error.description)")
            }
        }
        if let interval = section.optional("checkpoint_interval") {
            result.checkpointInterval = try interval.duration(in: .seconds(1) ... .seconds(7 * 86_400))
        }
        if let timeout = section.optional("write_timeout") {
            result.writer.writeTimeout = try timeout.duration(in: .milliseconds(100) ... .seconds(60))
        }
        if let journal = section.optional("journal") { result.journalPath = try journal.nonEmptyString() }
        if let chat = section.optional("chat") {
            result.chatRecording = ChatRecording(
                rawValue: try chat.choice(ChatRecording.allCases.map(\.rawValue)))!
        }
        if let syslogNode = section.optional("syslog") {
            var syslog = try syslogNode.mapping()
            let addressNode = try syslog.required("address")
            let address = try addressNode.nonEmptyString()
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
                (1...65535).contains(port), colon != address.startIndex
            else {
                throw addressNode.error("expected host:port, found \"\(address)\"")
            }
            let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            var settings = SyslogSettings(
                host: host, port: port, hostname: ProcessInfo.processInfo.hostName)
            settings.tls = try syslog.optional("tls")?.bool() ?? false
            settings.caFile = try syslog.optional("ca_file").map(certificateFile)
            if let name = syslog.optional("hostname") { settings.hostname = try name.nonEmptyString() }
            if let facility = syslog.optional("facility") { settings.facility = try facility.integer(in: 0...23) }
            try syslog.rejectUnknownKeys()
            result.syslog = settings
        }
        try section.rejectUnknownKeys()
        return result
    }

    private func databaseSettings(_ node: YAMLNode) throws(YAMLError) -> DatabaseSettings {
        var section = try node.mapping()
        let host = try section.required("host").nonEmptyString()
        let port = try section.optional("port")?.integer(in: 1...65535) ?? 5432
        let name = try section.required("name").nonEmptyString()
        let user = try section.required("user").nonEmptyString()
        let password = try secret(in: &section, named: "password")
        let tlsName = try section.optional("tls")?.choice(DatabaseSettings.TLSMode.allCases.map(\.rawValue))
        let tls = tlsName.flatMap(DatabaseSettings.TLSMode.init(rawValue:)) ?? .verifyFull
        let caFile = try section.optional("ca_file").map(certificateFile)
        let connectTimeout = try section.optional("connect_timeout")?.duration() ?? .seconds(5)
        let maximumConnections = try section.optional("max_connections")?.integer(in: 1...1000) ?? 20
        let queryTimeout = try section.optional("query_timeout")?.duration(in: .milliseconds(100) ... .seconds(300))
        try section.rejectUnknownKeys()
        return DatabaseSettings(
            host: host, port: port, name: name, user: user, password: password, tls: tls, caFile: caFile,
            connectTimeout: connectTimeout, maximumConnections: maximumConnections,
            queryTimeout: queryTimeout ?? .seconds(5))
    }

    private func directorySettings(_ node: YAMLNode) throws(YAMLError) -> DirectorySettings {
        var section = try node.mapping()
        let urisNode = try section.required("uris")
        var uris: [String] = []
        for element in try urisNode.list() {
            let uri = try element.nonEmptyString()
            guard uri.hasPrefix("ldap://") || uri.hasPrefix("ldaps://") else {
                throw element.error("expected an ldap:// or ldaps:// URI, found \"\(uri)\"")
            }
            uris.append(uri)
        }
        guard !uris.isEmpty else { throw urisNode.error("needs at least one URI") }
        let baseDN = try dn(try section.required("base_dn"))
        let bindDN = try dn(try section.required("bind_dn"))
        let password = try secret(in: &section, named: "password")
        let connectTimeout = try section.optional("connect_timeout")?.duration() ?? .seconds(3)
        let timeout = try section.optional("timeout")?.duration() ?? .seconds(5)
        var settings = DirectorySettings(
            uris: uris, baseDN: baseDN, bindDN: bindDN, bindPassword: password, connectTimeout: connectTimeout,
            operationTimeout: timeout)

        if let node = section.optional("tls") {
            var tls = try node.mapping()
            settings.tls.startTLS = try tls.optional("start_tls")?.bool() ?? false
            settings.tls.caFile = try tls.optional("ca_file").map(certificateFile)
            settings.tls.verifyCertificates = !(try tls.optional("insecure_skip_verify")?.bool() ?? false)
            try tls.rejectUnknownKeys()
        }
        if let node = section.optional("layout") {
            settings.layout =
                try node.choice(["openldap", "active-directory"]) == "openldap" ? .openLDAP : .activeDirectory
        }
        if let node = section.optional("users") {
            var users = try node.mapping()
            if let base = users.optional("base") { settings.layout.userBase = try dn(base) }
            if let filter = users.optional("filter") { settings.layout.userFilter = try template(filter, "{user}") }
            if let value = users.optional("account_attribute") {
                settings.layout.accountAttribute = try value.nonEmptyString()
            }
            if let value = users.optional("display_name_attribute") {
                settings.layout.displayNameAttribute = try value.nonEmptyString()
            }
            if let value = users.optional("mail_attribute") {
                settings.layout.mailAttribute = try value.nonEmptyString()
            }
            if let value = users.optional("title_attribute") {
                settings.layout.titleAttribute = try value.nonEmptyString()
            }
            if let value = users.optional("department_attribute") {
                settings.layout.departmentAttribute = try value.nonEmptyString()
            }
            try users.rejectUnknownKeys()
        }
        if let node = section.optional("groups") {
            var groups = try node.mapping()
            if let base = groups.optional("base") { settings.layout.groupBase = try dn(base) }
            if let membership = groups.optional("membership") {
                let name = try membership.choice(DirectoryLayout.GroupMembership.allCases.map(\.rawValue))
                settings.layout.groupMembership = DirectoryLayout.GroupMembership(rawValue: name) ?? .member
            }
            if let depth = groups.optional("max_depth") { settings.maximumGroupDepth = try depth.integer(in: 1...100) }
            if let count = groups.optional("max_groups") { settings.maximumGroups = try count.integer(in: 1...100_000) }
            try groups.rejectUnknownKeys()
        }
        if let node = section.optional("computers") {
            var computers = try node.mapping()
            if let base = computers.optional("base") { settings.layout.computerBase = try dn(base) }
            if let filter = computers.optional("filter") {
                settings.layout.computerFilter = try template(filter, "{name}")
            }
            if let value = computers.optional("name_attribute") {
                settings.layout.computerNameAttribute = try value.nonEmptyString()
            }
            try computers.rejectUnknownKeys()
        }
        if let size = section.optional("pool_size") { settings.poolSize = try size.integer(in: 1...256) }
        if let node = section.optional("cache") {
            var cache = try node.mapping()
            if let ttl = cache.optional("ttl") {
                // Membership changes must show within minutes.
                settings.cacheTTL = try ttl.duration(in: .zero ... .seconds(600))
            }
            if let size = cache.optional("size") { settings.cacheCapacity = try size.integer(in: 0...1_000_000) }
            try cache.rejectUnknownKeys()
        }
        try section.rejectUnknownKeys()
        return settings
    }

    private func operatorSettings(_ settings: inout YAMLMapping) throws(YAMLError) -> OperatorService.Settings {
        var result = OperatorService.Settings()
        if let node = settings.optional("roles") {
            var roles = try node.mapping()
            if let list = roles.optional("administrators") { result.roles.administrators = try dnSet(list) }
            if let list = roles.optional("auditors") { result.roles.auditors = try dnSet(list) }
            try roles.rejectUnknownKeys()
        }
        if let node = settings.optional("sessions") {
            var sessions = try node.mapping()
            if let interval = sessions.optional("account_check_interval") {
                result.accountCheckInterval = try interval.duration(in: .seconds(10) ... .seconds(3600))
            }
            if let idle = sessions.optional("console_idle_timeout") {
                result.consoleIdleTimeout = try idle.duration(in: .seconds(1) ... .seconds(8 * 3600))
            }
            if let lifetime = sessions.optional("lifetime") {
                result.sessionLifetime = try lifetime.duration(in: .seconds(60) ... .seconds(7 * 86_400))
            }
            try sessions.rejectUnknownKeys()
        }
        if let node = settings.optional("login_limits") {
            var limits = try node.mapping()
            if let value = limits.optional("failures_per_account") {
                result.loginLimits.failuresPerAccount = try value.integer(in: 1...1000)
            }
            if let value = limits.optional("failures_per_address") {
                result.loginLimits.failuresPerAddress = try value.integer(in: 1...100_000)
            }
            if let value = limits.optional("window") { result.loginLimits.window = try value.duration() }
            try limits.rejectUnknownKeys()
        }
        return result
    }

    private func distinguishedName(_ node: YAMLNode) throws(YAMLError) -> DistinguishedName {
        let text = try node.nonEmptyString()
        do {
            return try DistinguishedName(text)
        } catch {
            throw node.error(error.description)
        }
    }

    private func dn(_ node: YAMLNode) throws(YAMLError) -> String {
        try distinguishedName(node).original
    }

    private func dnSet(_ node: YAMLNode) throws(YAMLError) -> Set<DistinguishedName> {
        var result: Set<DistinguishedName> = []
        for element in try node.list() { result.insert(try distinguishedName(element)) }
        return result
    }

    /// A CA file named in the configuration, checked now so that `check-config` finds a wrong path, not the first
    /// connection.
    private func certificateFile(_ node: YAMLNode) throws(YAMLError) -> String {
        let path = try node.nonEmptyString()
        let content: String
        do {
            content = try readFile(path)
        } catch {
            throw node.error("cannot read the certificate file \(path): \(Self.reason(error))")
        }
        guard content.contains("-----BEGIN CERTIFICATE-----") else {
            throw node.error("\(path) holds no PEM certificate")
        }
        return path
    }

    private func template(_ node: YAMLNode, _ placeholder: String) throws(YAMLError) -> String {
        let text = try node.nonEmptyString()
        guard text.hasPrefix("("), text.hasSuffix(")"), text.contains(placeholder) else {
            throw node.error("expected an LDAP filter in parentheses containing \(placeholder), found \"\(text)\"")
        }
        return text
    }

    /// Reads a secret given as exactly one of `NAME`, `NAME_file` or `NAME_env`.
    private func secret(in section: inout YAMLMapping, named name: String) throws(YAMLError) -> String {
        let inline = section.optional(name)
        let file = section.optional("\(name)_file")
        let env = section.optional("\(name)_env")
        let given = [inline, file, env].compactMap { $0 }
        guard given.count == 1, let node = given.first else {
            let path = section.keyPath.isEmpty ? name : "\(section.keyPath).\(name)"
            let message =
                given.isEmpty
                ? "is required: set \(name)_file (a file holding the secret) or \(name)_env (an environment variable)"
                : "give only one of \(name), \(name)_file and \(name)_env"
            throw YAMLError(
                file: section.file, location: given.last?.location ?? section.location, keyPath: path, message: message)
        }
        let value: String
        if let file {
            let path = try file.nonEmptyString()
            do {
                value = try readFile(path)
            } catch {
                throw file.error("cannot read the secret file \(path): \(Self.reason(error))")
            }
        } else if let env {
            let variable = try env.nonEmptyString()
            guard let content = environment[variable] else {
                throw env.error("the environment variable \(variable) is not set")
            }
            value = content
        } else {
            value = try node.string()
        }
        // Files written by editors and `echo` end in a newline that is not part of the secret.
        let secret = String(value.trimmingSuffix { $0 == "\n" || $0 == "\r" })
        guard !secret.isEmpty else { throw node.error("the secret is empty") }
        return secret
    }

    /// Reads a UTF-8 text file.
    @Sendable
    public static func readTextFile(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if nsError.domain == NSCocoaErrorDomain {
            switch nsError.code {
            case NSFileReadNoSuchFileError: return "no such file"
            case NSFileReadNoPermissionError: return "permission denied"
            case NSFileReadInapplicableStringEncodingError: return "not UTF-8 text"
            default: break
            }
        }
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain
        {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return nsError.localizedDescription
    }
}

extension StringProtocol {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> SubSequence {
        var end = endIndex
        while end > startIndex, predicate(self[index(before: end)]) { end = index(before: end) }
        return self[startIndex..<end]
    }
}
