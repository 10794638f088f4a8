import HTTPTypes
import Hummingbird

/// Serves noVNC's modules under `/novnc/` for the console's session page, and only those: noVNC's own pages
/// (`vnc.html`, `vnc_lite.html`) are not served, since they would connect anywhere a link told them and run without
/// ora's Content-Security-Policy; every file served carries that policy and `nosniff`.
struct NoVNCFilesMiddleware<Context: RequestContext>: RouterMiddleware {
    let files: FileMiddleware<Context, LocalFileSystem>

    init(path: String) {
        files = FileMiddleware(path, urlBasePath: "/novnc", searchForIndexHtml: false)
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws
        -> Response
    {
        let path = request.uri.path
        guard path.hasPrefix("/novnc/") else { return try await next(request, context) }
        let name = path.lowercased()
        guard !name.hasSuffix(".html"), !name.hasSuffix(".htm"), !name.hasSuffix("/") else {
            throw HTTPError(.notFound)
        }
        var response = try await files.handle(request, context: context, next: next)
        response.headers[.contentSecurityPolicy] = ConsoleFiles.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}
