/// Hexadecimal text for bytes: content hashes, checksums and escapes.
public enum Hex {
    private static let lower = Array("0123456789abcdef")
    private static let upper = Array("0123456789ABCDEF")

    /// Two digits per byte, most significant first.
    public static func encode(_ bytes: some Sequence<UInt8>, uppercase: Bool = false) -> String {
        let digits = uppercase ? upper : lower
        var result = ""
        for byte in bytes {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0x0f)])
        }
        return result
    }

    /// Whether `byte` is an ASCII hex digit of either case (and nothing else: not the full-width digits that
    /// `Character.isHexDigit` also accepts).
    public static func isDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default: false
        }
    }
}
