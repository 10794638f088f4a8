import Crypto
public import Logging
public import NIOSSL
import ORACore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The server's own TLS on the HTTP port and the relay port (`listen.tls`): TLS 1.2 or later, with NIOSSL's modern
/// cipher suites (ECDHE key exchange, AEAD ciphers only). The certificate and key are read at start and again on
/// SIGHUP: connections made after a reload get the new certificate, and those open go on with theirs, so renewing
/// a certificate drops no session.
public final class ServerTLS: Sendable {
    public let settings: ListenTLSSettings
    private let current: Mutex<(context: NIOSSLContext, keySHA256: String)>

    /// Reads the certificate chain and key.
    /// - Throws: `ServerTLSError` when a file cannot be read or the key is not the certificate's.
    public init(settings: ListenTLSSettings) throws(ServerTLSError) {
        self.settings = settings
        current = Mutex(try Self.context(settings))
    }

    /// The context new connections are served with.
    public var context: NIOSSLContext {
        current.withLock { $0.context }
    }

    /// The SHA-256 of the certificate's public key (its DER SubjectPublicKeyInfo), in hex: what the other replicas
    /// check this one's relay port by (`ScreenForwarding`).
    public var keySHA256: String {
        current.withLock { $0.keySHA256 }
    }

    /// Reads the files again; on failure the previous certificate is kept.
    public func reload() throws(ServerTLSError) {
        let fresh = try Self.context(settings)
        current.withLock { $0 = fresh }
    }

    /// The SHA-256 of `certificate`'s public key, in hex.
    static func keySHA256(of certificate: NIOSSLCertificate) throws -> String {
        Hex.encode(SHA256.hash(data: try certificate.extractPublicKey().toSPKIBytes()))
    }

    /// A server context of `settings`' files, and the SHA-256 of its certificate's public key.
    /// - Throws: `ServerTLSError` saying which file cannot be used, and why.
    static func context(
        _ settings: ListenTLSSettings
    ) throws(ServerTLSError) -> (context: NIOSSLContext, keySHA256: String) {
        let (chainFile, keyFile) = (settings.certificateChainFile, settings.privateKeyFile)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(chainFile)
        } catch {
            throw ServerTLSError("cannot read the certificate chain in \(chainFile) (PEM): \(error)")
        }
        guard !chain.isEmpty else { throw ServerTLSError("\(chainFile) holds no PEM certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw ServerTLSError("cannot read the private key in \(keyFile) (PEM): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            return (try NIOSSLContext(configuration: configuration), try keySHA256(of: chain[0]))
        } catch {
            throw ServerTLSError(
                "the private key in \(keyFile) is not the one of the certificate in \(chainFile) (\(error))")
        }
    }
}

/// Why the server's certificate and key cannot be used.
public struct ServerTLSError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Reloads the server's certificate and key on SIGHUP (`systemctl reload ora-server`), saying so in the log.
struct ServerTLSReloader: Service {
    let tls: ServerTLS
    let logger: Logger
    /// Called after a reload that took: the other replicas are told the new key at once.
    let reloaded: @Sendable () async -> Void

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                try tls.reload()
                logger.notice(
                    "TLS certificate and key read again; new connections get them",
                    metadata: ["tls.certificate": "\(tls.settings.certificateChainFile)"])
                await reloaded()
            } catch {
                logger.error(
                    "TLS certificate and key not read again; the previous ones are still served",
                    metadata: ["tls.certificate": "\(tls.settings.certificateChainFile)", "error": "\(error)"])
            }
        }
    }
}
