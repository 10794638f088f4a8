import Foundation

/// Whether a request comes from a page of this server. Browsers send the page's origin (`Origin:`) with every
/// WebSocket upgrade and every request that is not a plain GET, and a page of another site cannot change it: the
/// check that stops cross-site request forgery and cross-site WebSocket hijacking.
enum BrowserOrigin {
    /// Whether `origin` is a page of this server: `http(s)://host[:port]` whose host is one of `names` (the names
    /// the server is configured to be reached by, compared without case) and whose authority is the one the request
    /// was sent to (`host`, the request's `host[:port]`), so that another service on another port of the same host
    /// is not trusted either. The scheme is not compared, since a proxy may terminate TLS in front of the server.
    /// `null` (a sandboxed or local page), an origin with a path or user, and one of another name are refused.
    static func isPage(origin: String, host: String?, names: [String]) -> Bool {
        let lowered = origin.lowercased()
        guard let separator = lowered.range(of: "://"),
            lowered.hasPrefix("http://") || lowered.hasPrefix("https://"),
            let host, !host.isEmpty
        else { return false }
        let authority = lowered[separator.upperBound...]
        guard !authority.contains("/"), !authority.contains("@"), authority == host.lowercased() else {
            return false
        }
        let name = Self.hostName(of: String(authority))
        return names.contains { $0.lowercased() == name }
    }

    /// Whether a WebSocket upgrade carrying `origin` may proceed: a browser page must be one of this server's
    /// (`isPage`); other clients (native viewers, tools) are not pages, and an Origin they send that is not a web
    /// origin says nothing.
    static func mayOpenSocket(origin: String?, host: String?, names: [String]) -> Bool {
        guard let origin else { return true }
        let lowered = origin.lowercased()
        if lowered == "null" { return false }
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { return true }
        return isPage(origin: origin, host: host, names: names)
    }

    /// The host of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`), without brackets.
    static func hostName(of authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        if let colon = authority.lastIndex(of: ":") { return String(authority[..<colon]) }
        return authority
    }
}
