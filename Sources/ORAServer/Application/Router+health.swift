import Hummingbird
import Prometheus

extension Router where Context == ORARequestContext {
    /// Adds the probes that orchestrators and monitoring use.
    ///
    /// - `GET /healthz`: the process is up (200, always, while it serves).
    /// - `GET /readyz`: the database and the directory are reachable (200), or which is not (503).
    /// - `GET /metrics`: metrics in the Prometheus text format.
    func addHealthRoutes(readiness: ReadinessCheck, metrics: ServerMetrics) {
        get("/healthz") { _, _ -> Response in
            try Response.encodedJSON(["status": "up", "version": ServerApplication.version])
        }
        get("/readyz") { _, _ -> Response in
            let result = await readiness.run()
            return try Response.encodedJSON(result, status: result.isReady ? .ok : .serviceUnavailable)
        }
        get("/metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeBytes(metrics.emit())
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: buffer)
            )
        }
    }
}
