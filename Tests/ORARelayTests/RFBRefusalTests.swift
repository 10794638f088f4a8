import ORARelay
import Testing

/// The refusal a viewer is sent when the machine cannot show its screen (RFC 6143 §7.1.1–7.1.2).
@Suite("RFB refusal: version, no security types, the reason")
struct RFBRefusalTests {
    @Test("version 3.8, zero security types, the reason's length in network order, the reason in UTF-8")
    func layout() {
        let bytes = RFBRefusal.bytes(reason: "no display: ü")
        #expect(Array(bytes.prefix(12)) == Array("RFB 003.008\n".utf8))
        #expect(bytes[12] == 0)
        #expect(Array(bytes[13..<17]) == [0, 0, 0, 14])
        #expect(String(decoding: bytes[17...], as: UTF8.self) == "no display: ü")
    }

    @Test("a long reason is cut to 512 bytes, never inside a character")
    func longReason() {
        // 511 ASCII bytes, then a two-byte character that would straddle the limit.
        let bytes = RFBRefusal.bytes(reason: String(repeating: "x", count: 511) + "éé")
        let length = bytes[13..<17].reduce(0) { $0 << 8 | Int($1) }
        #expect(length == 511)
        #expect(bytes.count == 17 + 511)
        #expect(String(decoding: bytes[17...], as: UTF8.self) == String(repeating: "x", count: 511))
    }
}
