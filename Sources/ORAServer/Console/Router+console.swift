import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == ORARequestContext {
    /// The console's pages: one page for every address a person may open or bookmark; its script shows what the
    /// address names.
    static var consolePages: [RouterPath] {
        [
            "/", "login", "login/link", "machines", "sessions", "queue", "invitations/open", "sessions/:id",
            "sessions/:id/view", "audit", "audit/sessions/:id", "policy", "agents",
        ]
    }

    /// Adds the console: its page at each of `consolePages`, its files under `/console/{version}/`, and noVNC's
    /// files under `/novnc/` from `novncPath`.
    func addConsoleRoutes(files: ConsoleFiles, novncPath: String) {
        add(middleware: NoVNCFilesMiddleware(path: novncPath))
        for path in Self.consolePages {
            get(path) { _, context -> Response in
                var response = Self.file(files.page, type: "text/html; charset=utf-8", cache: "no-store")
                // A session's page only for a session id: for anything else the page says there is no such page,
                // and the status says so too.
                if let id = context.parameters.get("id"), UUID(uuidString: id) == nil { response.status = .notFound }
                return response
            }
        }
        get("console/:version/:file") { _, context -> Response in
            guard context.parameters.get("version") == files.version,
                let name = context.parameters.get("file"), let file = files.assets[name]
            else { throw HTTPError(.notFound) }
            return Self.file(file.body, type: file.contentType, cache: "public, max-age=31536000, immutable")
        }
    }

    private static func file(_ body: ByteBuffer, type: String, cache: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = cache
        headers[.contentSecurityPolicy] = ConsoleFiles.contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: body))
    }
}
