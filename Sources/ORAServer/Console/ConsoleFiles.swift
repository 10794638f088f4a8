import Crypto
import Foundation
import NIOCore

/// The console's files (`Resources/console`): its one page, its ES modules and its style, read once when the server
/// is built. The modules and the style are served under `/console/{version}/`, where the version is a digest of all
/// the files, so browsers may keep them for a year: a new release has a new version. The page itself names that
/// version and is never cached.
struct ConsoleFiles: Sendable {
    /// The Content-Security-Policy of every page and file: scripts and styles of this server only (the console's and
    /// noVNC's), nothing inline, connections to this server only, no framing.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// A file to serve: its bytes and content type.
    struct File: Sendable {
        var body: ByteBuffer
        var contentType: String
    }

    /// The digest of every file, naming this release's files in their path.
    let version: String
    /// The page, `{{assets}}` already replaced by the files' path.
    let page: ByteBuffer
    /// The modules and the style, by file name.
    let assets: [String: File]

    /// Reads the console's files from the server's resources.
    /// - Throws: `ConfigurationError.unreadableFile` when the folder or a file is missing or cannot be read: the
    ///   installation is incomplete.
    static func load() throws(ConfigurationError) -> ConsoleFiles {
        guard let folder = Bundle.module.url(forResource: "console", withExtension: nil) else {
            throw .unreadableFile(path: "console", reason: "it is not among ora-server's resources")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        } catch {
            throw .unreadableFile(path: folder.path, reason: "\(error)")
        }
        var contents: [String: Data] = [:]
        var digest = SHA256()
        for name in names where !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            do {
                contents[name] = try Data(contentsOf: url)
            } catch {
                throw .unreadableFile(path: url.path, reason: "\(error)")
            }
            digest.update(data: Data(name.utf8))
            digest.update(data: contents[name] ?? Data())
        }
        let version = digest.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
        guard let page = contents.removeValue(forKey: "index.html") else {
            throw .unreadableFile(path: folder.appendingPathComponent("index.html").path, reason: "it is missing")
        }
        let html = String(decoding: page, as: UTF8.self).replacingOccurrences(
            of: "{{assets}}", with: "/console/\(version)")
        var assets: [String: File] = [:]
        for (name, data) in contents {
            guard let type = Self.contentType(of: name) else { continue }
            assets[name] = File(body: ByteBuffer(bytes: data), contentType: type)
        }
        return ConsoleFiles(version: version, page: ByteBuffer(string: html), assets: assets)
    }

    /// The content type of a file the console serves, by its extension; nil for any other kind.
    static func contentType(of name: String) -> String? {
        switch (name as NSString).pathExtension {
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        default: nil
        }
    }
}
