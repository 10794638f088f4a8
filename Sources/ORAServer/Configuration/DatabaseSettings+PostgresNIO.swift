import NIOCore
import NIOSSL
import ORACore
import ORAStore
import PostgresNIO

extension DatabaseSettings {
    /// Where the server's database is, for ORAStore to connect to: the only place in ORAServer that speaks
    /// PostgresNIO's configuration.
    /// - Throws: `ConfigurationError` when the TLS settings cannot be used.
    func endpoint() throws(ConfigurationError) -> DatabaseEndpoint {
        DatabaseEndpoint(client: try clientConfiguration(), probe: try probeConfiguration())
    }

    /// The settings of the direct connection readiness and start-up checks open.
    func probeConfiguration() throws(ConfigurationError) -> PostgresConnection.Configuration {
        let settings = self
        let tls: PostgresConnection.Configuration.TLS
        switch settings.tls {
        case .disable:
            tls = .disable
        case .verifyFull:
            do {
                tls = .require(try NIOSSLContext(configuration: try tlsConfiguration()))
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
        configuration.options.connectTimeout = .milliseconds(settings.connectTimeout.wholeMilliseconds)
        return configuration
    }

    /// Full verification against `ca_file`, or the system's trust store.
    func tlsConfiguration() throws(ConfigurationError) -> TLSConfiguration {
        let settings = self
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

    /// The settings of the connection pool.
    func clientConfiguration() throws(ConfigurationError) -> PostgresClient.Configuration {
        let settings = self
        let tls: PostgresClient.Configuration.TLS
        switch settings.tls {
        case .disable:
            tls = .disable
        case .verifyFull:
            tls = .require(try tlsConfiguration())
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
