import HummingbirdCore
import Logging
import NIOCore
import NIOSSL

/// A child channel of the HTTP port behind the server's own TLS: each connection gets the certificate that is
/// current when it is accepted (`ServerTLS`), then `base` sets up the rest. Its buffers come from `SparseBuffers`,
/// so the TLS buffers of thousands of idle agents cost only the pages their messages use.
struct TLSChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let tls: ServerTLS

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(ChannelOptions.allocator, value: SparseBuffers.allocator)
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
