public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension UUID {
    /// A random (version 4) UUID from the system's random generator, taken 4 KB at a time. Foundation's `UUID()`
    /// opens and closes a file for every UUID, and a system call for each would still be most of an audit event's
    /// cost in the kernel; an audit event needs one on every action.
    public static func random() -> UUID {
        var bytes = RandomPool.shared.take()
        bytes.6 = bytes.6 & 0x0f | 0x40  // version 4
        bytes.8 = bytes.8 & 0x3f | 0x80  // the RFC 4122 variant
        return UUID(uuid: bytes)
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

/// Random bytes from the system's generator, fetched a block at a time and handed out 16 at a time.
private final class RandomPool: Sendable {
    static let shared = RandomPool()
    private static let blockSize = 4096
    private let state = Mutex<(bytes: [UInt8], offset: Int)>(([], 0))

    func take() -> uuid_t {
        state.withLock { state in
            if state.offset + 16 > state.bytes.count {
                state.bytes = Self.block()
                state.offset = 0
            }
            defer { state.offset += 16 }
            return state.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: state.offset, as: uuid_t.self) }
        }
    }

    /// One block from the kernel's generator (`/dev/urandom`, one read); from the standard library's generator
    /// (a system call per 8 bytes) if that read fails.
    private static func block() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: blockSize)
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        let filled = descriptor < 0 ? -1 : bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, blockSize) }
        if descriptor >= 0 { close(descriptor) }
        if filled != blockSize {
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
        }
        return bytes
    }
}
