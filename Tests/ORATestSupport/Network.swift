#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loopback sockets for tests.
public enum Network {
    /// A TCP port on 127.0.0.1 that nothing listens on at the moment of the call.
    public static func freePort() throws -> Int {
        let listener = try BlackHoleListener()
        return listener.port
    }
}

/// A TCP socket on 127.0.0.1 that listens but never accepts or answers: the kernel completes connections into its
/// backlog, and whatever a client sends waits there forever. It is what a hung server looks like from outside.
public final class BlackHoleListener: @unchecked Sendable {
    /// The port it listens on.
    public let port: Int
    private let descriptor: Int32

    /// Opens the socket on a port the system picks.
    public init() throws {
        #if canImport(Glibc)
        let socketType = Int32(SOCK_STREAM.rawValue)
        #else
        let socketType = SOCK_STREAM
        #endif
        let descriptor = socket(AF_INET, socketType, 0)
        guard descriptor >= 0 else { throw TestSetupError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            close(descriptor)
            throw TestSetupError("bind() or listen() failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(descriptor)
    }
}
