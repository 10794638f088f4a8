import Foundation

/// The rule for an ora server's URL in the command line and the agent: passwords, tokens and device keys travel to
/// it, so it must be `https://`, or `http://` only to this machine.
public enum ServerURL {
    /// The host names that never leave the machine.
    public static let loopbackHosts: Set<String> = ["127.0.0.1", "::1", "[::1]", "localhost"]

    /// What to tell someone whose URL breaks the rule.
    public static func refusal(_ url: String) -> String {
        "the server URL must start with https:// (http:// only for 127.0.0.1, [::1] or localhost): \(url)"
    }

    /// `url` without a trailing slash, or `nil` when it is neither `https://` nor `http://` to this machine.
    public static func checked(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty,
            components.scheme == "https" || (components.scheme == "http" && loopbackHosts.contains(host))
        else { return nil }
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }
}
