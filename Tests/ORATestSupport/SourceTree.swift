import Foundation

/// Paths in the ora source tree and its build, found from this file's location.
public enum SourceTree {
    /// The repository's root directory.
    public static let root: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    /// The directory holding the built executables: `$ORA_BIN_DIR`, or the one next to the running test bundle.
    public static var binaryDirectory: String {
        if let directory = ProcessInfo.processInfo.environment["ORA_BIN_DIR"], !directory.isEmpty { return directory }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("ora-server").path) { return url.path }
        }
        return root + "/.build/debug"
    }

    /// The path of a built executable, for example `ora-server`.
    public static func binary(_ name: String) -> String {
        binaryDirectory + "/" + name
    }
}

/// A directory for one test's files, removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    /// The directory's path.
    public let path: String

    /// Creates an empty directory under the system's temporary directory, readable by other users (so the
    /// PostgreSQL and slapd service users can use files in it).
    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ora-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `text` to `name` inside the directory and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ text: String, permissions: Int = 0o600) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: file)
        return file
    }
}
