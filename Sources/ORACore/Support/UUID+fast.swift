import Crypto
public import Foundation
import Synchronization

extension UUID {
    /// A random (version 4) UUID. Its bytes come from a pool refilled 4 KiB at a time with the ChaCha20 keystream
    /// under a fresh random key: Foundation's `UUID()` opens, reads and closes `/dev/urandom` for every UUID, and
    /// Swift's system generator (which swift-crypto's `SymmetricKey` uses too) makes a system call for every 8
    /// bytes, which an audit event paid on every action.
    public static func random() -> UUID {
        var bytes = randomPool.withLock { $0.next() }
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

private let randomPool = Mutex(RandomPool())

/// Random bytes drawn in bulk and handed out 16 at a time, each once.
private struct RandomPool {
    private static let size = 4096
    private var bytes: [UInt8] = []
    private var offset = 0

    mutating func next() -> (UInt64, UInt64) {
        if offset + 16 > bytes.count {
            bytes = fresh()
            offset = 0
        }
        defer { offset += 16 }
        return bytes.withUnsafeBytes { raw in
            (
                raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
                raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            )
        }
    }

    /// `size` fresh random bytes: the ChaCha20 keystream under a key drawn from Swift's system generator (four of
    /// its calls for 256 UUIDs, where drawing every UUID from it takes two).
    private func fresh() -> [UInt8] {
        let zeros = [UInt8](repeating: 0, count: Self.size)
        guard let sealed = try? ChaChaPoly.seal(zeros, using: SymmetricKey(size: .bits256)) else {
            // Sealing fails only for a wrong key or nonce size, and neither is chosen here.
            preconditionFailure("ChaCha20 could not produce random bytes")
        }
        return Array(sealed.ciphertext)
    }
}
