import ORARelay
import Testing

/// The refusal a viewer is sent when the machine cannot show its screen (RFC 6143 §7.1.1–7.1.2).
@Suite("RFB refusal: version, no security types, the reason")
struct RFBRefusalTests {
    @Test("version 3.8 first; then zero security types, the reason's length in network order, the reason in UTF-8")
    func layout() {
        #expect(RFBRefusal.greeting == Array("RFB 003.008\n".utf8))
        let bytes = RFBRefusal.failure(reason: "no display: ü")
        #expect(bytes[0] == 0)
        #expect(Array(bytes[1..<5]) == [0, 0, 0, 14])
        #expect(String(decoding: bytes[5...], as: UTF8.self) == "no display: ü")
    }

    @Test("a long reason is cut to 512 bytes, never inside a character")
    func longReason() {
        // 511 ASCII bytes, then a two-byte character that would straddle the limit.
        let bytes = RFBRefusal.failure(reason: String(repeating: "x", count: 511) + "éé")
        let length = bytes[1..<5].reduce(0) { $0 << 8 | Int($1) }
        #expect(length == 511)
        #expect(bytes.count == 5 + 511)
        #expect(String(decoding: bytes[5...], as: UTF8.self) == String(repeating: "x", count: 511))
    }
}
