public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension UUID {
    /// A random (version 4) UUID. Its bytes come from a pool the kernel's generator fills 4 KiB at a time, in one
    /// read of `/dev/urandom`: Foundation's `UUID()` opens, reads and closes `/dev/urandom` for every UUID, and
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
    private var urandom: Int32 = -1

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

    /// `size` bytes from the kernel's generator: through `/dev/urandom`, kept open, one read for the pool; where
    /// it cannot be opened, through Swift's system generator, 8 bytes a call.
    private mutating func fresh() -> [UInt8] {
        if urandom == -1 { urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }
        let descriptor = urandom
        return [UInt8](unsafeUninitializedCapacity: Self.size) { buffer, count in
            count = Self.size
            guard descriptor >= 0 else {
                var generator = SystemRandomNumberGenerator()
                let raw = UnsafeMutableRawBufferPointer(buffer)
                for offset in stride(from: 0, to: Self.size, by: 8) {
                    raw.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
                }
                return
            }
            var filled = 0
            while filled < Self.size {
                let got = read(descriptor, buffer.baseAddress! + filled, Self.size - filled)
                // Only a signal can interrupt it; anything else would leave the pool without randomness, which
                // must never be handed out.
                precondition(got > 0 || (got < 0 && errno == EINTR), "/dev/urandom cannot be read: errno \(errno)")
                filled += max(0, got)
            }
        }
    }
}
