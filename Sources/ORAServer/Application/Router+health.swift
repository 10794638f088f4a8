import Foundation
import Hummingbird
import Prometheus

extension Router where Context == ORARequestContext {
    /// Adds the probes that orchestrators and monitoring use.
    ///
    /// - `GET /healthz`: the process is up (200, always, while it serves).
    /// - `GET /readyz`: the database and the directory are reachable (200), or which is not (503).
    /// - `GET /metrics`: metrics in the Prometheus text format.
    func addHealthRoutes(readiness: ReadinessCheck, metrics: PrometheusCollectorRegistry) {
        get("/healthz") { _, _ -> Response in
            Response.json(status: .ok, #"{"status":"up","version":"\#(ServerApplication.version)"}"#)
        }
        get("/readyz") { _, _ -> Response in
            let result = await readiness.run()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = (try? encoder.encode(result)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return Response.json(status: result.isReady ? .ok : .serviceUnavailable, body)
        }
        get("/metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeBytes(metrics.emitToBuffer())
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: buffer)
            )
        }
    }
}

extension Response {
    /// A JSON response with `text` as its body.
    static func json(status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}
