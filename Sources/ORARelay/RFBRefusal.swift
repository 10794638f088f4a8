/// What a VNC server says when it will not show its screen, in RFB's own words (RFC 6143 §7.1.1–7.1.2): its protocol
/// version, and — once the viewer has answered with its own — no security types and the reason, which viewers show
/// the person using them (noVNC's `securityfailure`, TigerVNC's error dialog). The agent says it when its screen
/// program cannot start or ends before showing anything, so that the helper learns why instead of seeing the
/// connection drop.
public enum RFBRefusal {
    /// The longest reason sent; a longer one is cut, on a character boundary.
    public static let maximumReasonBytes = 512

    /// The server's protocol version, 3.8: sent first, and answered by the viewer with its version before anything
    /// else may follow (noVNC reads nothing more until then).
    public static let greeting: [UInt8] = Array("RFB 003.008\n".utf8)

    /// What follows the viewer's version: a count of zero security types, the reason's length and the reason in
    /// UTF-8.
    public static func failure(reason: String) -> [UInt8] {
        var text = Array(reason.utf8)
        if text.count > maximumReasonBytes {
            var cut = String(decoding: text.prefix(maximumReasonBytes), as: UTF8.self)
            // A character cut in two decodes as U+FFFD: drop it.
            while cut.hasSuffix("\u{FFFD}") { cut.removeLast() }
            text = Array(cut.utf8)
        }
        let length = UInt32(text.count)
        return [
            0, UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF),
        ]
            + text
    }
}
