public import Foundation

extension UUID {
    /// A random (version 4) UUID from the standard library's system generator. Foundation's `UUID()` opens, reads
    /// and closes `/dev/urandom` for every UUID, which an audit event paid on every action.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        var bytes = (generator.next() as UInt64, generator.next() as UInt64)
        return withUnsafeMutableBytes(of: &bytes) { raw in
            raw[6] = raw[6] & 0x0f | 0x40  // version 4
            raw[8] = raw[8] & 0x3f | 0x80  // the RFC 4122 variant
            return UUID(uuid: raw.load(as: uuid_t.self))
        }
    }

    /// The canonical text in lower case (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), without `uuidString`'s
    /// formatting through printf and a second pass to lower it.
    public var lowercasedText: String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                digits.withUTF8Buffer { digits in
                    var index = 0
                    for (position, byte) in bytes.enumerated() {
                        if position == 4 || position == 6 || position == 8 || position == 10 {
                            text[index] = UInt8(ascii: "-")
                            index += 1
                        }
                        text[index] = digits[Int(byte >> 4)]
                        text[index + 1] = digits[Int(byte & 0x0f)]
                        index += 2
                    }
                }
                return 36
            }
        }
    }
}
