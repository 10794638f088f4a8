import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ORACore

extension Router where Context == ViewerSocketContext {
    /// Adds the browser's leg of the screen relay, `/viewer/v1/screen?ticket=…` (checked before the upgrade, so a
    /// refused viewer gets 403). Agents and native viewers use the relay port instead (`ScreenRelayListener`).
    /// - Parameters:
    ///   - names: the names browsers reach this server by; a page of another name may not open a viewer.
    ///   - proxies: the proxies in front of the server whose `X-Forwarded-For` names the viewer's address.
    func addScreenRoutes(screens: ScreenService, names: [String], proxies: TrustedProxies?) {
        func source(_ request: Request, _ context: ViewerSocketContext) -> String {
            let peer = context.remoteAddress?.ipAddress ?? "unknown"
            guard let proxies else { return peer }
            return proxies.client(peer: peer, forwardedFor: request.headers[values: HTTPField.Name.xForwardedFor])
        }
        ws(
            "viewer/v1/screen",
            shouldUpgrade: { request, context in
                let source = source(request, context)
                // A page of another site must not open a viewer with a ticket it got hold of: browsers send the
                // page's origin, which must be this server's own (the host the request was sent to).
                if let origin = request.headers[.origin] {
                    guard BrowserOrigin.mayOpenSocket(origin: origin, host: request.head.authority, names: names)
                    else {
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
            let source = source(context.request, context.requestContext)
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
