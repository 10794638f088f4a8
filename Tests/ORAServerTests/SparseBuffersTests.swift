import Glibc
import NIOCore
import Testing

@testable import ORAServer

/// The TLS connections' buffer allocator: a large buffer costs only the pages written to it, and holds exactly the
/// bytes any buffer would. Residency is read from the kernel (`mincore`), page by page.
@Suite("Buffers that cost only their written pages")
struct SparseBuffersTests {
    private static let page = SparseBuffers.pageSize

    @Test("a large buffer starts on a page with none of its pages resident; writing makes only that page resident")
    func largeBufferStartsEmpty() {
        // Memory written and freed, as a handshake's, which the allocator hands out again: resident already.
        let written = (0..<3).map { _ in malloc(40 * 1024)! }
        let after = malloc(64)
        defer { free(after) }
        for block in written { memset(block, 0x5A, 40 * 1024) }
        for block in written { free(block) }
        var buffer = SparseBuffers.allocator.buffer(capacity: 32 * 1024)
        let (start, capacity) = buffer.withVeryUnsafeBytes { (UInt(bitPattern: $0.baseAddress), $0.count) }
        #expect(start % UInt(Self.page) == 0)
        #expect(Self.residentPages(of: buffer) == 0, "the buffer's pages were resident before anything was written")
        buffer.writeString(String(repeating: "x", count: 300))
        #expect(Self.residentPages(of: buffer) == 1)
        #expect(capacity >= 32 * 1024)
    }

    @Test("a small buffer is an ordinary one")
    func smallBuffer() {
        var buffer = SparseBuffers.allocator.buffer(capacity: 512)
        buffer.writeString("hello")
        buffer.writeBytes(Array(repeating: 7, count: 2000))
        #expect(buffer.readString(length: 5) == "hello")
        #expect(buffer.readBytes(length: 2000) == Array(repeating: 7, count: 2000))
    }

    @Test("a shared buffer's copy holds its bytes")
    func copyOfSharedBuffer() {
        var original = SparseBuffers.allocator.buffer(capacity: 64 * 1024)
        original.writeString("the agent's hello")
        original.writeBytes(Array(repeating: 0xA5, count: 40_000))
        var copy = original
        // Writing to a buffer whose storage is shared copies the storage.
        copy.writeString(", and more")
        #expect(original.readableBytes == 40_017)
        #expect(copy.readString(length: 17) == "the agent's hello")
        #expect(copy.readBytes(length: 40_000) == Array(repeating: 0xA5, count: 40_000))
        #expect(copy.readString(length: copy.readableBytes) == ", and more")
    }

    /// How many of `buffer`'s pages are in memory.
    private static func residentPages(of buffer: ByteBuffer) -> Int {
        buffer.withVeryUnsafeBytes { bytes in
            let start = UInt(bitPattern: bytes.baseAddress!) & ~UInt(page - 1)
            let end = UInt(bitPattern: bytes.baseAddress!) + UInt(bytes.count)
            let pages = Int((end - start + UInt(page) - 1) / UInt(page))
            var vector = [UInt8](repeating: 0, count: pages)
            guard mincore(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), &vector) == 0 else {
                return -1
            }
            return vector.filter { $0 & 1 == 1 }.count
        }
    }
}
