import Glibc
@_spi(CustomByteBufferAllocator) import NIOCore

/// The allocator of the connections behind the server's own TLS: a buffer of 16 KB or more starts on a page of its
/// own, with its pages given back to the kernel (`MADV_DONTNEED`), so it costs only the pages written to it.
///
/// swift-nio-ssl gives each connection 48 KB of buffers when its handshake starts (two TLS records for what it
/// reads, one for what it writes) and keeps them for the connection's life, though an agent's messages are a few
/// hundred bytes. Fresh memory costs nothing until written, but glibc's allocator hands out memory that earlier
/// handshakes wrote and freed, which is resident from the start, and a buffer that starts inside a page makes a
/// short message touch two. With this allocator, agents on TLS cost about 3.8 KB less each (Scale.md).
enum SparseBuffers {
    static let allocator = ByteBufferAllocator(
        allocate: sparseAllocate, reallocate: sparseReallocate, deallocate: sparseDeallocate, copy: sparseCopy)

    /// The size from which a buffer starts on a page and with its pages given back.
    static let threshold = 16 * 1024

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
}

private func sparseAllocate(_ size: Int) -> UnsafeMutableRawPointer? {
    guard size >= SparseBuffers.threshold else { return malloc(size) }
    var memory: UnsafeMutableRawPointer?
    guard posix_memalign(&memory, SparseBuffers.pageSize, size) == 0, let memory else { return nil }
    // Only advice: pages the kernel keeps stay resident, as they would without it. Whole pages only: the last
    // one may be shared with whatever the allocator puts after the buffer.
    let pages = size / SparseBuffers.pageSize * SparseBuffers.pageSize
    _ = madvise(memory, pages, MADV_DONTNEED)
    return memory
}

private func sparseReallocate(
    _ memory: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int
)
    -> UnsafeMutableRawPointer?
{
    realloc(memory, newSize)
}

private func sparseDeallocate(_ memory: UnsafeMutableRawPointer) {
    free(memory)
}

private func sparseCopy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int) {
    destination.copyMemory(from: source, byteCount: count)
}
