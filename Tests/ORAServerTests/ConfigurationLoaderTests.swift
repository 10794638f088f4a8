import Foundation
import Logging
import ORACore
import ORADirectory
import ORAMail
import ORAServer
import Testing

@Suite("Server configuration file")
struct ConfigurationLoaderTests {
    static let valid = """
        listen:
          host: 127.0.0.1
          port: 8443
        database:
          host: db.corp.example
          port: 5433
          name: ora
          user: ora_server
          password_file: /run/secrets/db
          tls: verify-full
          ca_file: /etc/ora/db-ca.pem
          connect_timeout: 2s
        directory:
          uris: ["ldaps://dc1.corp.example", "ldaps://dc2.corp.example"]
          base_dn: dc=corp,dc=example
          bind_dn: cn=ora-service,ou=Service Accounts,dc=corp,dc=example
          password_env: ORA_LDAP_PASSWORD
          timeout: 4s
        log:
          level: debug
        """

    static let certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    static let files = [
        "/run/secrets/db": "db-secret\n", "/etc/ora/db-ca.pem": certificate, "/etc/ora/ldap-ca.pem": certificate,
        "/etc/ora/not-a-certificate.pem": "hello\n",
    ]

    private func loader(
        files: [String: String] = Self.files,
        environment: [String: String] = ["ORA_LDAP_PASSWORD": "ldap-secret"]
    ) -> ConfigurationLoader {
        ConfigurationLoader(environment: environment) { path in
            guard let content = files[path] else { throw CocoaLikeMissingFile() }
            return content
        }
    }

    @Test("a complete file is read with its secrets")
    func valid() throws {
        let configuration = try loader().parse(Self.valid, file: "ora.yaml")
        #expect(configuration.listen == ListenSettings(host: "127.0.0.1", port: 8443))
        #expect(configuration.database.host == "db.corp.example")
        #expect(configuration.database.port == 5433)
        #expect(configuration.database.user == "ora_server")
        #expect(configuration.database.password == "db-secret")  // the file's trailing newline is not part of it
        #expect(configuration.database.tls == .verifyFull)
        #expect(configuration.database.caFile == "/etc/ora/db-ca.pem")
        #expect(configuration.database.connectTimeout == .seconds(2))
        #expect(configuration.directory.uris == ["ldaps://dc1.corp.example", "ldaps://dc2.corp.example"])
        #expect(configuration.directory.bindPassword == "ldap-secret")
        #expect(configuration.directory.operationTimeout == .seconds(4))
        #expect(configuration.logLevel == .debug)
    }

    @Test("defaults: listen on loopback 8080, TLS verified, info logging")
    func defaults() throws {
        let text = """
            database: {host: db, name: ora, user: ora, password_env: DB}
            directory: {uris: ["ldap://dc"], base_dn: "dc=x", bind_dn: "cn=svc,dc=x", password_env: LDAP}
            """
        let configuration = try loader(environment: ["DB": "a", "LDAP": "b"]).parse(text, file: "ora.yaml")
        #expect(configuration.listen == ListenSettings(host: "127.0.0.1", port: 8080))
        #expect(configuration.database.port == 5432)
        #expect(configuration.database.tls == .verifyFull)
        #expect(configuration.logLevel == .info)
    }

    @Test("plain HTTP on another address than loopback only behind a proxy that terminates TLS, named by address")
    func listenBehindProxy() throws {
        let everywhere = Self.valid.replacingOccurrences(of: "host: 127.0.0.1", with: "host: 0.0.0.0")
        let refused = #expect(throws: YAMLError.self) { try loader().parse(everywhere, file: "ora.yaml") }
        #expect(
            refused?.description
                == "ora.yaml:2:9: listen.host: plain HTTP is served only on loopback, and 0.0.0.0 is not: set "
                + "listen.tls for the server's own TLS, or listen.behind_proxy when a proxy in front terminates TLS")

        let proxied = everywhere.replacingOccurrences(
            of: "port: 8443", with: "port: 8443\n  behind_proxy: {trusted: [10.0.0.0/8, \"fd00::1\"]}")
        let configuration = try loader().parse(proxied, file: "ora.yaml")
        #expect(configuration.listen.host == "0.0.0.0")
        #expect(configuration.listen.behindProxy?.entries == ["10.0.0.0/8", "fd00::1"])
        #expect(configuration.listen.behindProxy?.contains("10.20.30.40") == true)

        for host in ["::1", "localhost", "127.0.0.2"] {
            let local = Self.valid.replacingOccurrences(of: "host: 127.0.0.1", with: "host: \"\(host)\"")
            #expect(try loader().parse(local, file: "ora.yaml").listen.host == host)
        }
        let named = proxied.replacingOccurrences(of: "10.0.0.0/8", with: "lb.corp.example")
        let badEntry = #expect(throws: YAMLError.self) { try loader().parse(named, file: "ora.yaml") }
        #expect(
            badEntry?.description.hasPrefix("ora.yaml:4:27: listen.behind_proxy.trusted: \"lb.corp.example\"") == true)
        let empty = everywhere.replacingOccurrences(of: "port: 8443", with: "port: 8443\n  behind_proxy: {trusted: []}")
        let emptyError = #expect(throws: YAMLError.self) { try loader().parse(empty, file: "ora.yaml") }
        #expect(emptyError?.description.contains("name at least one proxy address") == true)
        let unknown = everywhere.replacingOccurrences(
            of: "port: 8443", with: "port: 8443\n  behind_proxy: {trusted: [10.0.0.1], headers: forwarded}")
        let unknownError = #expect(throws: YAMLError.self) { try loader().parse(unknown, file: "ora.yaml") }
        #expect(unknownError?.description.contains("listen.behind_proxy.headers: unknown setting") == true)
    }

    @Test("listen.openings_per_address: 128 unless set (its mistakes are among the `mistakes` below)")
    func openingsPerAddress() throws {
        #expect(try loader().parse(Self.valid, file: "ora.yaml").listen.openingsPerAddress == 128)
        let raised = Self.valid.replacingOccurrences(of: "port: 8443", with: "port: 8443\n  openings_per_address: 4096")
        #expect(try loader().parse(raised, file: "ora.yaml").listen.openingsPerAddress == 4096)
    }

    @Test("directory layout, TLS, cache, roles, sessions and login limits")
    func directoryAndOperators() throws {
        let text = Self.valid.replacingOccurrences(
            of: "  timeout: 4s\n",
            with: """
                  timeout: 4s
                  tls: {start_tls: true, ca_file: /etc/ora/ldap-ca.pem}
                  layout: active-directory
                  users: {base: "CN=Users,DC=corp,DC=example", title_attribute: jobTitle}
                  groups: {membership: member-of, max_depth: 8}
                  computers: {base: "OU=Computers,DC=corp,DC=example"}
                  pool_size: 4
                  cache: {ttl: 45s, size: 500}
                roles:
                  administrators: ["CN=RA Admins,OU=Groups,DC=corp,DC=example"]
                  auditors: ["cn=Security,ou=Groups,dc=corp,dc=example"]
                sessions: {lifetime: 4h}
                login_limits: {failures_per_account: 3, window: 10m}

                """)
        let configuration = try loader().parse(text, file: "ora.yaml")
        let directory = configuration.directory
        #expect(directory.tls == DirectoryTLS(startTLS: true, caFile: "/etc/ora/ldap-ca.pem", verifyCertificates: true))
        #expect(directory.layout.accountAttribute == "sAMAccountName")
        #expect(directory.layout.titleAttribute == "jobTitle" && directory.layout.departmentAttribute == "department")
        #expect(directory.layout.userFilter == DirectoryLayout.activeDirectory.userFilter)
        #expect(directory.layout.userBase == "CN=Users,DC=corp,DC=example")
        #expect(directory.layout.groupMembership == .memberOf)
        #expect(directory.maximumGroupDepth == 8)
        #expect(directory.poolSize == 4)
        #expect(directory.cacheTTL == .seconds(45))
        #expect(directory.cacheCapacity == 500)
        #expect(
            configuration.operators.roles.administrators == [
                try DistinguishedName("cn=ra admins,ou=groups,dc=corp,dc=example")
            ])
        #expect(configuration.operators.sessionLifetime == .seconds(4 * 3600))
        #expect(configuration.operators.loginLimits.failuresPerAccount == 3)
        #expect(configuration.operators.loginLimits.failuresPerAddress == 20)
        #expect(configuration.operators.loginLimits.window == .seconds(600))
    }

    @Test("the screen: relay port and noVNC's directory, with their defaults")
    func screen() throws {
        let defaults = try loader().parse(Self.valid, file: "ora.yaml")
        #expect(defaults.screen == ScreenSettings(novncPath: "/usr/share/novnc", relayPort: nil))
        #expect(defaults.screen.relayPort(listening: 8443) == 8444)
        #expect(defaults.screen.relayPort(listening: 0) == 0)
        #expect(defaults.screen.relayPort(listening: 65535) == 0)
        let set = try loader().parse(
            Self.valid + "\nscreen:\n  relay_port: 9443\n  novnc_path: /opt/novnc", file: "ora.yaml")
        #expect(set.screen == ScreenSettings(novncPath: "/opt/novnc", relayPort: 9443))
        #expect(set.screen.relayPort(listening: 8443) == 9443)
    }

    @Test("where the other replicas reach the relay port: the listen address unless a wildcard, or the one set")
    func replicaAddress() throws {
        let defaults = try loader().parse(Self.valid, file: "ora.yaml").screen
        #expect(defaults.replicaAddress(listenHost: "10.1.2.3", port: 8081) == "10.1.2.3:8081")
        #expect(defaults.replicaAddress(listenHost: "10.1.2.3", port: 0) == nil, "not bound yet")
        #expect(defaults.replicaAddress(listenHost: "0.0.0.0", port: 8081) == nil, "a wildcard names no machine")
        #expect(defaults.replicaAddress(listenHost: "::", port: 8081) == nil)
        let named = try loader().parse(Self.valid + "\nscreen:\n  replica_host: fd00::7", file: "ora.yaml").screen
        #expect(named.replicaAddress(listenHost: "::", port: 8081) == "[fd00::7]:8081")
        let fromEnvironment = try loader(environment: ["ORA_LDAP_PASSWORD": "x", "POD_IP": "10.244.1.17"]).parse(
            Self.valid + "\nscreen:\n  replica_host_env: POD_IP", file: "ora.yaml"
        ).screen
        #expect(fromEnvironment.replicaAddress(listenHost: "0.0.0.0", port: 8081) == "10.244.1.17:8081")
        #expect(defaults.publicRelayPort == nil)
        let behind = try loader().parse(Self.valid + "\nscreen:\n  public_relay_port: 443", file: "ora.yaml").screen
        #expect(behind.publicRelayPort == 443)
    }

    @Test(
        "agents: the names they use, the offer limit, the ping, directory refresh and enrollment check intervals, with their defaults"
    )
    func agents() throws {
        let defaults = try loader().parse(Self.valid, file: "ora.yaml").agents
        #expect(defaults.offersPerMachinePerMinute == 3)
        #expect(defaults.pingInterval == .seconds(30))
        #expect(defaults.directoryRefreshInterval == .seconds(900))
        #expect(defaults.enrollmentCheckInterval == .seconds(60))
        let set = try loader().parse(
            Self.valid + "\nagents:\n  server_names: [ora.corp.example]\n  offers_per_machine_per_minute: 5\n"
                + "  ping_interval: 45s\n  directory_refresh_interval: 1h\n  enrollment_check_interval: 5m",
            file: "ora.yaml"
        ).agents
        #expect(
            set
                == AgentSettings(
                    serverNames: ["ora.corp.example"], offersPerMachinePerMinute: 5, pingInterval: .seconds(45),
                    directoryRefreshInterval: .seconds(3600), enrollmentCheckInterval: .seconds(300)))
    }

    @Test("chat lines are kept as text unless the configuration says digest")
    func chatRecording() throws {
        #expect(try loader().parse(Self.valid, file: "ora.yaml").audit.chatRecording == .text)
        let digest = try loader().parse(Self.valid + "\naudit:\n  chat: digest", file: "ora.yaml")
        #expect(digest.audit.chatRecording == .digest)
    }

    @Test("mail: off unless configured; STARTTLS with verified certificates by default; a login only over TLS")
    func mail() throws {
        #expect(try loader().parse(Self.valid, file: "ora.yaml").mail == nil)
        let text =
            Self.valid + """

                mail:
                  host: smtp.corp.example
                  from: ora@corp.example
                  username: ora
                  password_file: /run/secrets/db
                  ca_file: /etc/ora/ldap-ca.pem
                  console_url: https://ora.corp.example/
                """
        let mail = try #require(try loader().parse(text, file: "ora.yaml").mail)
        #expect(mail.smtp.host == "smtp.corp.example" && mail.smtp.port == 587)
        #expect(mail.smtp.security == .startTLS && mail.smtp.verifyCertificates)
        #expect(mail.smtp.username == "ora" && mail.smtp.password == "db-secret")
        #expect(mail.smtp.caFile == "/etc/ora/ldap-ca.pem")
        #expect(mail.smtp.from.description == "ora@corp.example" && mail.smtp.fromName == "ora remote assistance")
        #expect(mail.consoleURL == "https://ora.corp.example")
        #expect(mail.smtp.securityWarnings.isEmpty)
        let local = try #require(
            try loader().parse(
                Self.valid + "\nmail: {host: localhost, port: 25, security: none, from: ora@corp.example}",
                file: "ora.yaml"
            ).mail)
        #expect(local.smtp.security == .none)
        #expect(local.smtp.securityWarnings == ["mail.security is none: invitations are sent to localhost without TLS"])
    }

    @Test("certificate verification is on unless explicitly turned off")
    func insecureIsExplicit() throws {
        let verified = try loader().parse(Self.valid, file: "ora.yaml")
        #expect(verified.directory.tls.verifyCertificates)
        let lab = try loader().parse(
            Self.valid.replacingOccurrences(
                of: "  timeout: 4s\n", with: "  timeout: 4s\n  tls: {insecure_skip_verify: true}\n"),
            file: "ora.yaml")
        #expect(!lab.directory.tls.verifyCertificates)
    }

    @Test("a missing configuration file names the file")
    func missingFile() {
        let error = #expect(throws: ConfigurationError.self) { try loader().load(path: "/etc/ora/missing.yaml") }
        #expect(error?.description.hasPrefix("/etc/ora/missing.yaml: cannot read the configuration file") == true)
    }

    @Test("each mistake gets its own message naming the file, line and key", arguments: Self.mistakes)
    func mistake(_ mistake: Mistake) {
        let (name, text, expected) = (mistake.name, mistake.text, mistake.expected)
        let error = #expect(throws: YAMLErrorBox.self, "\(name)") {
            do { _ = try loader().parse(text, file: "ora.yaml") } catch { throw YAMLErrorBox(description: "\(error)") }
        }
        #expect(error?.description.contains(expected) == true, "\(name): \(error?.description ?? "no error")")
        #expect(error?.description.contains("\n") == false, "\(name): the message must be one line")
    }

    @Test("secrets never appear in error messages")
    func secretsStayOut() {
        // The mistake comes after both secrets were read.
        let text = Self.valid.replacingOccurrences(of: "level: debug", with: "level: loud")
        let error = #expect(throws: (any Error).self) { try loader().parse(text, file: "ora.yaml") }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("log.level"))
        #expect(!message.contains("ldap-secret"))
        #expect(!message.contains("db-secret"))
    }

    @Test("an empty secret is refused")
    func emptySecret() {
        let error = #expect(throws: (any Error).self) {
            try loader(files: Self.files.merging(["/run/secrets/db": "\n"]) { $1 }).parse(Self.valid, file: "ora.yaml")
        }
        #expect(error.map { "\($0)" }?.contains("database.password_file: the secret is empty") == true)
    }
}

struct Mistake: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var expected: String
    var testDescription: String { name }

    init(_ name: String, _ text: String, _ expected: String) {
        self.name = name
        self.text = text
        self.expected = expected
    }
}

extension ConfigurationLoaderTests {
    static let mistakes: [Mistake] = [
        Mistake(
            "chat recorded neither as text nor as digest",
            Self.valid + "\naudit:\n  chat: nothing",
            "ora.yaml:22:9: audit.chat: expected one of text, digest, found \"nothing\""
        ),

        Mistake(
            "mail without TLS to another host",
            Self.valid + "\nmail: {host: smtp.corp.example, security: none, from: ora@corp.example}",
            "mail.security: none is allowed only for a relay on this host (localhost); use starttls for smtp.corp.example"
        ),
        Mistake(
            "a mail login without TLS",
            Self.valid
                + "\nmail: {host: localhost, security: none, from: ora@corp.example, username: ora, password: x}",
            "mail.username: a login to the mail server is sent only over TLS: set security: starttls"
        ),
        Mistake(
            "a sender that is no address",
            Self.valid + "\nmail: {host: localhost, from: \"ora helpdesk\"}",
            "mail.from: \"ora helpdesk\" is not an e-mail address ora sends to: it may hold only ASCII letters"
        ),
        Mistake(
            "a console address that is not one",
            Self.valid + "\nmail: {host: localhost, from: ora@corp.example, console_url: ora.corp.example}",
            "mail.console_url: expected the console's address, such as https://ora.corp.example"
        ),
        Mistake(
            "unknown key",
            Self.valid.replacingOccurrences(of: "  tls: verify-full", with: "  tls: verify-full\n  colour: blue"),
            "ora.yaml:11:3: database.colour: unknown setting"
        ),
        Mistake(
            "unknown section",
            Self.valid + "\nmetrics: {}",
            "ora.yaml:21:1: metrics: unknown setting"
        ),
        Mistake(
            "bad YAML",
            "database: [host: db\n",
            "ora.yaml:2:1: not valid YAML"
        ),
        Mistake(
            "missing secret",
            Self.valid.replacingOccurrences(of: "  password_env: ORA_LDAP_PASSWORD\n", with: ""),
            "directory.password: is required: set password_file"
        ),
        Mistake(
            "secret given twice",
            Self.valid.replacingOccurrences(
                of: "  password_env: ORA_LDAP_PASSWORD", with: "  password_env: ORA_LDAP_PASSWORD\n  password: inline"),
            "directory.password: give only one of password, password_file and password_env"
        ),
        Mistake(
            "unset environment variable",
            Self.valid.replacingOccurrences(of: "ORA_LDAP_PASSWORD", with: "ORA_UNSET"),
            "ora.yaml:17:17: directory.password_env: the environment variable ORA_UNSET is not set"
        ),
        Mistake(
            "unreadable secret file",
            Self.valid.replacingOccurrences(of: "/run/secrets/db", with: "/run/secrets/nope"),
            "ora.yaml:9:18: database.password_file: cannot read the secret file /run/secrets/nope"
        ),
        Mistake(
            "missing section",
            "database: {host: db, name: ora, user: ora, password_env: ORA_LDAP_PASSWORD}\n",
            "directory: is required"
        ),
        Mistake(
            "port out of range",
            Self.valid.replacingOccurrences(of: "port: 5433", with: "port: 70000"),
            "ora.yaml:6:9: database.port: expected a whole number from 1 to 65535, found \"70000\""
        ),
        Mistake(
            "unknown TLS mode",
            Self.valid.replacingOccurrences(of: "tls: verify-full", with: "tls: maybe"),
            "database.tls: expected one of disable, verify-full, found \"maybe\""
        ),
        Mistake(
            "not an LDAP URI",
            Self.valid.replacingOccurrences(of: "\"ldaps://dc2.corp.example\"", with: "\"http://dc2\""),
            "directory.uris[1]: expected an ldap:// or ldaps:// URI, found \"http://dc2\""
        ),
        Mistake(
            "bad duration",
            Self.valid.replacingOccurrences(of: "timeout: 4s", with: "timeout: 4 seconds"),
            "directory.timeout: expected a duration"
        ),
        Mistake(
            "bad log level",
            Self.valid.replacingOccurrences(of: "level: debug", with: "level: loud"),
            "log.level: expected one of trace, debug, info, notice, warning, error, critical, found \"loud\""
        ),
        Mistake(
            "bad DN in roles",
            Self.valid + "\nroles: {administrators: [\"cn=RA Admins,,dc=x\"]}",
            "roles.administrators[0]: not a valid DN"
        ),
        Mistake(
            "filter without its placeholder",
            Self.valid.replacingOccurrences(
                of: "  timeout: 4s", with: "  timeout: 4s\n  users: {filter: \"(uid=admin)\"}"),
            "directory.users.filter: expected an LDAP filter in parentheses containing {user}"
        ),
        Mistake(
            "unknown TLS setting",
            Self.valid.replacingOccurrences(of: "  timeout: 4s", with: "  timeout: 4s\n  tls: {verify: false}"),
            "directory.tls.verify: unknown setting (allowed here: ca_file, insecure_skip_verify, start_tls)"
        ),
        Mistake(
            "cache too long",
            Self.valid.replacingOccurrences(of: "  timeout: 4s", with: "  timeout: 4s\n  cache: {ttl: 1h}"),
            "directory.cache.ttl: must be at most 10m"
        ),
        Mistake(
            "unreadable CA file",
            Self.valid.replacingOccurrences(of: "/etc/ora/db-ca.pem", with: "/etc/ora/missing.pem"),
            "ora.yaml:11:12: database.ca_file: cannot read the certificate file /etc/ora/missing.pem"
        ),
        Mistake(
            "CA file without a certificate",
            Self.valid.replacingOccurrences(of: "/etc/ora/db-ca.pem", with: "/etc/ora/not-a-certificate.pem"),
            "database.ca_file: /etc/ora/not-a-certificate.pem holds no PEM certificate"
        ),
        Mistake(
            "no directory URIs",
            Self.valid.replacingOccurrences(
                of: "[\"ldaps://dc1.corp.example\", \"ldaps://dc2.corp.example\"]", with: "[]"),
            "ora.yaml:14:9: directory.uris: needs at least one URI"
        ),
        Mistake(
            "invalid base DN",
            Self.valid.replacingOccurrences(of: "base_dn: dc=corp,dc=example", with: "base_dn: dc=corp,,dc=example"),
            "ora.yaml:15:12: directory.base_dn: not a valid DN"
        ),
        Mistake(
            "unknown layout",
            Self.valid.replacingOccurrences(of: "  timeout: 4s", with: "  timeout: 4s\n  layout: novell"),
            "directory.layout: expected one of openldap, active-directory, found \"novell\""
        ),
        Mistake(
            "computer filter without its placeholder",
            Self.valid.replacingOccurrences(
                of: "  timeout: 4s", with: "  timeout: 4s\n  computers: {filter: \"(cn=*)\"}"),
            "directory.computers.filter: expected an LDAP filter in parentheses containing {name}"
        ),
        Mistake(
            "no openings allowed per address",
            Self.valid.replacingOccurrences(of: "port: 8443", with: "port: 8443\n  openings_per_address: 0"),
            "ora.yaml:4:25: listen.openings_per_address: expected a whole number from 1 to 100000, found \"0\""
        ),
        Mistake(
            "openings per address past the ceiling",
            Self.valid.replacingOccurrences(of: "port: 8443", with: "port: 8443\n  openings_per_address: 100001"),
            "ora.yaml:4:25: listen.openings_per_address: expected a whole number from 1 to 100000, found \"100001\""
        ),
        Mistake(
            "openings per address not a number",
            Self.valid.replacingOccurrences(of: "port: 8443", with: "port: 8443\n  openings_per_address: many"),
            "ora.yaml:4:25: listen.openings_per_address: expected a whole number from 1 to 100000, found \"many\""
        ),
        Mistake(
            "relay port out of range",
            Self.valid + "\nscreen:\n  relay_port: 70000",
            "ora.yaml:22:15: screen.relay_port: expected a whole number from 0 to 65535, found \"70000\""
        ),
        Mistake(
            "ping interval out of range",
            Self.valid + "\nagents:\n  ping_interval: 500ms",
            "ora.yaml:22:18: agents.ping_interval: must be between 1s and 10m"
        ),
        Mistake(
            "enrollment check interval out of range",
            Self.valid + "\nagents:\n  enrollment_check_interval: 2h",
            "ora.yaml:22:30: agents.enrollment_check_interval: must be between 1s and 1h"
        ),
        Mistake(
            "directory refresh interval out of range",
            Self.valid + "\nagents:\n  directory_refresh_interval: 2d",
            "ora.yaml:22:31: agents.directory_refresh_interval: must be between 10s and 1d"
        ),
        Mistake(
            "public relay port out of range",
            Self.valid + "\nscreen:\n  public_relay_port: 0",
            "ora.yaml:22:22: screen.public_relay_port: expected a whole number from 1 to 65535, found \"0\""
        ),
        Mistake(
            "replica host twice",
            Self.valid + "\nscreen:\n  replica_host: 10.0.0.1\n  replica_host_env: POD_IP",
            "screen.replica_host: give only one of replica_host and replica_host_env"
        ),
        Mistake(
            "replica host from a variable that is not set",
            Self.valid + "\nscreen:\n  replica_host_env: POD_IP",
            "ora.yaml:22:21: screen.replica_host_env: the environment variable POD_IP is not set"
        ),
        Mistake(
            "unknown screen setting",
            Self.valid + "\nscreen:\n  codec: h264",
            "ora.yaml:22:3: screen.codec: unknown setting"
        ),
        Mistake(
            "listen port out of range",
            Self.valid.replacingOccurrences(of: "port: 8443", with: "port: 99999"),
            "ora.yaml:3:9: listen.port: expected a whole number from 0 to 65535, found \"99999\""
        ),
        Mistake(
            "pool size out of range",
            Self.valid.replacingOccurrences(of: "  timeout: 4s", with: "  timeout: 4s\n  pool_size: 0"),
            "directory.pool_size: expected a whole number from 1 to 256, found \"0\""
        ),
        Mistake(
            "login limit out of range",
            Self.valid + "\nlogin_limits: {failures_per_account: 0}",
            "login_limits.failures_per_account: expected a whole number from 1 to 1000, found \"0\""
        ),
        Mistake(
            "session lifetime too long",
            Self.valid + "\nsessions: {lifetime: 30d}",
            "ora.yaml:21:22: sessions.lifetime: must be between 1m and 7d"
        ),
        Mistake(
            "unknown group membership",
            Self.valid.replacingOccurrences(of: "  timeout: 4s", with: "  timeout: 4s\n  groups: {membership: nested}"),
            "directory.groups.membership: expected one of member, member-of, in-chain, found \"nested\""
        ),
        Mistake(
            "empty file",
            "",
            "ora.yaml: the configuration file is empty"
        ),
    ]
}

private struct CocoaLikeMissingFile: Error {}
private struct YAMLErrorBox: Error { var description: String }
