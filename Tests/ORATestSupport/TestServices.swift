import Foundation

/// The throwaway PostgreSQL and slapd that `Deploy/dev/test` starts, as its environment describes them.
public struct TestServices: Sendable {
    /// PostgreSQL host.
    public var postgresHost: String
    /// PostgreSQL port.
    public var postgresPort: Int
    /// The application role.
    public var postgresUser: String
    /// The application role's password.
    public var postgresPassword: String
    /// The file holding the application role's password.
    public var postgresPasswordFile: String
    /// The superuser, used only to create and drop test databases.
    public var postgresSuperuser: String
    /// The superuser's password.
    public var postgresSuperuserPassword: String
    /// A login role that has only the `ora_server` role's rights, as a production server runs.
    public var postgresServerUser: String
    /// The file holding its password.
    public var postgresServerPasswordFile: String
    /// The Ed25519 key (PEM) servers sign audit checkpoints with.
    public var auditSigningKeyFile: String
    /// The slapd URI.
    public var ldapURI: String
    /// The directory's base DN.
    public var ldapBaseDN: String
    /// The ora service account.
    public var ldapBindDN: String
    /// The service account's password.
    public var ldapPassword: String
    /// The file holding the service account's password.
    public var ldapPasswordFile: String
    /// The directory administrator (the rootdn), used only to add and remove test entries.
    public var ldapAdminDN: String
    /// The file holding the administrator's password.
    public var ldapAdminPasswordFile: String
    /// The same slapd over TLS (`ldaps://`).
    public var ldapsURI: String
    /// The CA that signed slapd's certificate.
    public var ldapCAFile: String
    /// The naming context laid out like Active Directory.
    public var adBaseDN: String
    /// Its service account.
    public var adBindDN: String
    /// Its service account's password.
    public var adPassword: String

    /// Reads the settings from the environment.
    /// - Throws: `TestSetupError` naming the missing variable and how to get it.
    public static func fromEnvironment() throws -> TestServices {
        let environment = ProcessInfo.processInfo.environment
        func value(_ name: String) throws -> String {
            guard let value = environment[name], !value.isEmpty else {
                throw TestSetupError(
                    "\(name) is not set: run the tests with Deploy/dev/test, or source the env file that "
                        + "Deploy/dev/services up prints (see Docs/Development.md)")
            }
            return value
        }
        func file(_ name: String) throws -> (path: String, content: String) {
            let path = try value(name)
            let content = try String(contentsOfFile: path, encoding: .utf8)
            return (path, content.trimmingCharacters(in: .newlines))
        }
        let postgresPassword = try file("ORA_PG_PASSWORD_FILE")
        let superuserPassword = try file("ORA_PG_SUPERUSER_PASSWORD_FILE")
        let ldapPassword = try file("ORA_LDAP_PASSWORD_FILE")
        guard let port = Int(try value("ORA_PG_PORT")) else { throw TestSetupError("ORA_PG_PORT is not a number") }
        return TestServices(
            postgresHost: try value("ORA_PG_HOST"),
            postgresPort: port,
            postgresUser: try value("ORA_PG_USER"),
            postgresPassword: postgresPassword.content,
            postgresPasswordFile: postgresPassword.path,
            postgresSuperuser: try value("ORA_PG_SUPERUSER"),
            postgresSuperuserPassword: superuserPassword.content,
            postgresServerUser: try value("ORA_PG_SERVER_USER"),
            postgresServerPasswordFile: try value("ORA_PG_SERVER_PASSWORD_FILE"),
            auditSigningKeyFile: try value("ORA_AUDIT_SIGNING_KEY_FILE"),
            ldapURI: try value("ORA_LDAP_URI"),
            ldapBaseDN: try value("ORA_LDAP_BASE_DN"),
            ldapBindDN: try value("ORA_LDAP_BIND_DN"),
            ldapPassword: ldapPassword.content,
            ldapPasswordFile: ldapPassword.path,
            ldapAdminDN: try value("ORA_LDAP_ADMIN_DN"),
            ldapAdminPasswordFile: try value("ORA_LDAP_ADMIN_PASSWORD_FILE"),
            ldapsURI: try value("ORA_LDAPS_URI"),
            ldapCAFile: try value("ORA_LDAP_CA_FILE"),
            adBaseDN: try value("ORA_LDAP_AD_BASE_DN"),
            adBindDN: try value("ORA_LDAP_AD_BIND_DN"),
            adPassword: try file("ORA_LDAP_AD_PASSWORD_FILE").content
        )
    }

    /// Creates an empty database owned by the application role, named uniquely for one test.
    /// - Returns: the database's name.
    public func createDatabase(prefix: String = "test") async throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try await superuserSQL("CREATE DATABASE \(name) OWNER \(postgresUser)")
        return name
    }

    /// Drops a database made by `createDatabase`, disconnecting whoever still uses it.
    public func dropDatabase(_ name: String) async throws {
        try await superuserSQL("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs SQL as the application role in `database` with psql and returns its unaligned output.
    public func sql(_ statement: String, database: String) async throws -> String {
        try await psql(statement, database: database, user: postgresUser, password: postgresPassword)
    }

    /// Applies LDIF (add, modify or delete records) as the directory administrator with ldapmodify.
    public func ldapModify(_ ldif: String) async throws {
        let files = try TemporaryDirectory()
        let path = try files.write("change.ldif", ldif)
        let result = try await ChildProcess.run(
            "/usr/bin/ldapmodify",
            arguments: ["-x", "-c", "-H", ldapURI, "-D", ldapAdminDN, "-y", ldapAdminPasswordFile, "-f", path]
        )
        guard result.status == 0 else { throw TestSetupError("ldapmodify failed: \(result.standardError)") }
    }

    /// Deletes an entry and everything below it as the directory administrator.
    public func ldapDeleteTree(_ dn: String) async throws {
        let result = try await ChildProcess.run(
            "/usr/bin/ldapdelete",
            arguments: ["-x", "-r", "-H", ldapURI, "-D", ldapAdminDN, "-y", ldapAdminPasswordFile, dn])
        guard result.status == 0 || result.status == 32 else {
            throw TestSetupError("ldapdelete failed: \(result.standardError)")
        }
    }

    private func superuserSQL(_ statement: String) async throws {
        _ = try await psql(
            statement, database: "postgres", user: postgresSuperuser, password: postgresSuperuserPassword)
    }

    /// Runs SQL as the PostgreSQL superuser in `database`, as someone with full control of the database would.
    public func superuserSQL(_ statement: String, database: String) async throws -> String {
        try await psql(statement, database: database, user: postgresSuperuser, password: postgresSuperuserPassword)
    }

    /// Starts psql running `statement` as the application role in `database` and returns it still running: a
    /// session that holds a lock until the process is stopped.
    public func backgroundSQL(_ statement: String, database: String) throws -> ChildProcess {
        try ChildProcess(
            "/usr/bin/psql",
            arguments: [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", postgresHost, "-p", "\(postgresPort)", "-U",
                postgresUser, "-d", database, "-c", statement,
            ],
            environment: ["PGPASSWORD": postgresPassword, "PGCONNECT_TIMEOUT": "10"])
    }

    private func psql(_ statement: String, database: String, user: String, password: String) async throws -> String {
        let result = try await ChildProcess.run(
            "/usr/bin/psql",
            arguments: [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", postgresHost, "-p", "\(postgresPort)", "-U",
                user,
                "-d", database, "-c", statement,
            ],
            environment: ["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"]
        )
        guard result.status == 0 else { throw TestSetupError("psql failed: \(result.standardError)") }
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The test environment is not set up as the tests need it.
public struct TestSetupError: Error, CustomStringConvertible {
    /// What is missing and how to fix it.
    public var description: String

    /// Creates an error.
    public init(_ description: String) { self.description = description }
}
