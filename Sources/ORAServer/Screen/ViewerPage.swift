import Foundation
import NIOCore

/// The browser viewer: one page per session (`/sessions/{id}/view`) with noVNC showing the screen, the session's
/// state as it changes, "Request control" and "End session". The page holds no data of its own: everything comes
/// from the API with the operator's token, and text from elsewhere (machine and account names) is only ever set as
/// text, never parsed as HTML. The token is kept in the tab's session storage; a link may hand it over in the URL's
/// fragment (`#token=…`), which browsers do not send to servers, and the page removes it from the address at once.
///
/// The page, its script and its style are files among the server's resources (`Resources/viewer`), read once when
/// the server is built; the script finds the session in the page's address.
struct ViewerPage: Sendable {
    /// The Content-Security-Policy of the page: its own script and noVNC's, nothing inline, connections to this
    /// server only.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// The page, the same for every session.
    let html: ByteBuffer
    /// The page's script.
    let script: ByteBuffer
    /// The page's style.
    let css: ByteBuffer

    /// Reads the viewer's files from the server's resources.
    /// - Throws: `ConfigurationError.unreadableFile` naming a file that is missing or cannot be read: the
    ///   installation is incomplete.
    static func load() throws(ConfigurationError) -> ViewerPage {
        func read(_ name: String) throws(ConfigurationError) -> ByteBuffer {
            guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "viewer") else {
                throw .unreadableFile(path: "viewer/" + name, reason: "it is not among ora-server's resources")
            }
            do {
                return ByteBuffer(bytes: try Data(contentsOf: url))
            } catch {
                throw .unreadableFile(path: url.path, reason: "\(error)")
            }
        }
        return ViewerPage(html: try read("viewer.html"), script: try read("viewer.js"), css: try read("viewer.css"))
    }
}
