import NIOPosix
import ServiceLifecycle

/// A thread pool that runs as long as the server: started when made, shut down after the services that use it.
final class ThreadPoolService: Service, Sendable {
    /// The pool.
    let pool: NIOThreadPool

    /// Creates and starts a pool of `threads` threads.
    init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}
