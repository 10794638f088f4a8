import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ORACore

extension Router where Context == ORARequestContext {
    /// Adds the browser viewer: `/sessions/{id}/view`, its script and style (`page`'s files), and noVNC's files
    /// under `/novnc/` from `novncPath`.
    func addViewerRoutes(page: ViewerPage, novncPath: String) {
        add(middleware: NoVNCFilesMiddleware(path: novncPath))
        get("sessions/:id/view") { _, context -> Response in
            // Only for a session id: anything else is not a page of this server.
            _ = try context.sessionID()
            return Self.page(page.html, type: "text/html; charset=utf-8")
        }
        get("viewer/viewer.js") { _, _ -> Response in
            Self.page(page.script, type: "text/javascript; charset=utf-8")
        }
        get("viewer/viewer.css") { _, _ -> Response in
            Self.page(page.css, type: "text/css; charset=utf-8")
        }
    }

    private static func page(_ body: ByteBuffer, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-store"
        headers[.contentSecurityPolicy] = ViewerPage.contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: body))
    }
}

extension Router where Context == ViewerSocketContext {
    /// Adds the browser's leg of the screen relay, `/viewer/v1/screen?ticket=…` (checked before the upgrade, so a
    /// refused viewer gets 403). Agents and native viewers use the relay port instead (`ScreenRelayListener`).
    func addScreenRoutes(screens: ScreenService) {
        ws(
            "viewer/v1/screen",
            shouldUpgrade: { request, context in
                let source = context.remoteAddress?.ipAddress ?? "unknown"
                // A page of another site must not open a viewer with a ticket it got hold of: browsers send the
                // page's origin, which must be this server's own (the host the request was sent to).
                if let origin = request.headers[.origin] {
                    guard ViewerOrigin.isAllowed(origin: origin, host: request.head.authority) else {
                        context.logger.warning(
                            "screen connection refused: a page of another site",
                            metadata: ["origin": "\(AuditText.escaped(origin))", "source": "\(source)"])
                        throw APIError(
                            .forbidden, code: "cross_site_viewer",
                            message: "the viewer connection comes from another site (\(AuditText.escaped(origin)))")
                    }
                }
                try await screens.admitViewer(ticket: request.uri.queryParameters.get("ticket"), source: source)
                // noVNC asks for the `binary` subprotocol; a browser drops a connection that does not get it back.
                let asked = request.headers[.secWebSocketProtocol] ?? ""
                guard
                    asked.split(separator: ",").contains(where: {
                        $0.trimmingCharacters(in: .whitespaces) == "binary"
                    })
                else { return .upgrade([:]) }
                return .upgrade([.secWebSocketProtocol: "binary"])
            }
        ) { inbound, outbound, context in
            let source = context.requestContext.remoteAddress?.ipAddress ?? "unknown"
            let ticket = context.request.uri.queryParameters.get("ticket") ?? ""
            let channel = context.requestContext.channel
            var frames = inbound.makeAsyncIterator()
            var inText = false
            await screens.serveViewer(
                ticket: ticket, leg: WebSocketScreenLeg(outbound: outbound, channel: channel), channel: channel,
                source: source
            ) {
                // Binary messages carry RFB; text messages (and their continuations) are not part of it.
                while let frame = try await frames.next() {
                    switch frame.opcode {
                    case .binary: inText = false
                    case .text: inText = true
                    case .continuation where !inText: break
                    default: continue
                    }
                    if !inText { return frame.data }
                }
                return nil
            }
        }
    }
}

/// The context of Hummingbird's WebSocket upgrades (the browsers' screen legs; agents' connections never reach the
/// router): the peer's address and channel, and the handler the upgrade runs.
struct ViewerSocketContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let remoteAddress: SocketAddress?
    /// The connection, for handlers that join it at the channel level (the screen relay).
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

/// Whether a WebSocket may come from the page that opened it.
enum ViewerOrigin {
    /// Whether `origin` may open a viewer on `host` (the request's `host[:port]`). A browser sends the page's origin,
    /// `http(s)://host[:port]`, which must name this server's own host and port (compared without case; the scheme
    /// is not compared, since a proxy may terminate TLS in front of the server); `null` (a sandboxed or local page)
    /// is refused. Other clients (native viewers, tools) are not pages, and their Origin, if any, says nothing.
    static func isAllowed(origin: String, host: String?) -> Bool {
        let lowered = origin.lowercased()
        if lowered == "null" { return false }
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { return true }
        guard let host, !host.isEmpty, let separator = lowered.range(of: "://") else { return false }
        let authority = lowered[separator.upperBound...]
        guard !authority.contains("/"), !authority.contains("@") else { return false }
        return authority == host.lowercased()
    }
}
