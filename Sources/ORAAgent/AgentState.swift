public import Crypto
public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the agent keeps on the machine, in its state directory (`/var/lib/ora-agent` by default): the device's
/// private key (`device-key.pem`, mode 0600, never sent anywhere) and the enrollment (`agent.json`: the server and
/// the machine's name).
public struct AgentState: Sendable {
    /// The enrollment: which server, as which machine.
    public struct Enrollment: Sendable, Codable, Hashable {
        /// The server's base URL.
        public var server: String
        /// The machine's name as enrolled.
        public var machine: String
        /// A CA file to verify the server's certificate with, if not the system's.
        public var caFile: String?

        /// Creates an enrollment record.
        public init(server: String, machine: String, caFile: String?) {
            self.server = server
            self.machine = machine
            self.caFile = caFile
        }

        enum CodingKeys: String, CodingKey {
            case server, machine
            case caFile = "ca_file"
        }
    }

    /// The state directory.
    public let directory: URL

    /// The state in `directory`.
    public init(directory: String) {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true)
    }

    var keyFile: URL { directory.appendingPathComponent("device-key.pem") }
    var enrollmentFile: URL { directory.appendingPathComponent("agent.json") }

    /// Stores a new device key and the enrollment, replacing any earlier ones. The key file is created with mode
    /// 0600 before anything is written to it, and both files are replaced atomically.
    /// - Throws: `AgentError.state` naming the file that could not be written.
    public func save(key: P256.Signing.PrivateKey, enrollment: Enrollment) throws(AgentError) {
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .state("cannot create the state directory \(directory.path)")
        }
        try writePrivately(Data(key.pemRepresentation.utf8), to: keyFile)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writePrivately((try? encoder.encode(enrollment)) ?? Data(), to: enrollmentFile)
    }

    /// The device key and the enrollment.
    /// - Throws: `AgentError.notEnrolled` when the machine has not enrolled, `.state` when a file is unreadable or
    ///   the key file can be read by others.
    public func load() throws(AgentError) -> (key: P256.Signing.PrivateKey, enrollment: Enrollment) {
        guard FileManager.default.fileExists(atPath: enrollmentFile.path),
            FileManager.default.fileExists(atPath: keyFile.path)
        else { throw .notEnrolled(directory.path) }
        var status = stat()
        guard stat(keyFile.path, &status) == 0 else { throw .state("cannot read \(keyFile.path)") }
        guard status.st_mode & 0o077 == 0 else {
            throw .state("\(keyFile.path) can be read by other users; it must have mode 0600")
        }
        guard let pem = try? String(contentsOf: keyFile, encoding: .utf8),
            let key = try? P256.Signing.PrivateKey(pemRepresentation: pem)
        else { throw .state("\(keyFile.path) is not a P-256 private key in PEM") }
        guard let data = try? Data(contentsOf: enrollmentFile),
            let enrollment = try? JSONDecoder().decode(Enrollment.self, from: data)
        else { throw .state("\(enrollmentFile.path) is not a valid enrollment record") }
        return (key, enrollment)
    }

    /// Writes `data` to a new file readable by the owner only, then renames it over `file`.
    func writePrivately(_ data: Data, to file: URL) throws(AgentError) {
        let temporary = file.path + ".new"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw .state("cannot create \(temporary)") }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == data.count, synced, rename(temporary, file.path) == 0 else {
            unlink(temporary)
            throw .state("cannot write \(file.path)")
        }
    }
}

/// What can go wrong in the agent, with a message for the administrator installing it.
public enum AgentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The machine has not enrolled yet.
    case notEnrolled(String)
    /// A file of the state directory cannot be used.
    case state(String)
    /// The server URL or another argument is not usable.
    case invalidArgument(String)
    /// The server refused, with its message.
    case refused(status: Int, message: String)
    /// The server cannot be reached.
    case unreachable(String)

    public var description: String {
        switch self {
        case .notEnrolled(let directory):
            "this machine is not enrolled (nothing in \(directory)); run: ora-agent enroll --server URL --token TOKEN"
        case .state(let message): message
        case .invalidArgument(let message): message
        case .refused(let status, let message): "the server refused (HTTP \(status)): \(message)"
        case .unreachable(let message): message
        }
    }

    /// The exit code: 2 for a refusal or a mistake, 3 when the server cannot be reached, 1 otherwise.
    public var exitCode: Int32 {
        switch self {
        case .refused, .invalidArgument, .notEnrolled: 2
        case .unreachable: 3
        case .state: 1
        }
    }
}
