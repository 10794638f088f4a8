import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The token `ora login` saved, in the user's configuration directory, readable by the user only.
struct Credentials: Codable {
    var server: String
    var token: String
    var account: String
    var expiresAt: Date
    /// The CA file the login verified the server with; nil for the system's CAs.
    var caFile: String?

    enum CodingKeys: String, CodingKey {
        case server, token, account
        case expiresAt = "expires_at"
        case caFile = "ca_file"
    }

    /// `$ORA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/ora`, else `~/.config/ora`.
    static var directory: String {
        let environment = ProcessInfo.processInfo.environment
        if let directory = environment["ORA_CONFIG_DIR"], !directory.isEmpty { return directory }
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty { return config + "/ora" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.config/ora"
    }

    static var path: String { directory + "/credentials.json" }

    static func load() -> Credentials? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Credentials.self, from: data)
    }

    /// Writes the file with mode 0600 from the start, in a directory with mode 0700.
    func save() throws {
        try FileManager.default.createDirectory(
            atPath: Self.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        let temporary = Self.path + ".tmp"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw CredentialsError(message: "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard written == data.count, rename(temporary, Self.path) == 0 else {
            unlink(temporary)
            throw CredentialsError(message: "cannot write \(Self.path)")
        }
    }

    static func remove() {
        unlink(path)
    }
}

struct CredentialsError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
