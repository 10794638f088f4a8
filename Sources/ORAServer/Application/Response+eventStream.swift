import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Response {
    /// Server-sent events: `opening` (a comment, say) at once, then each element of `stream` as `event: name` and one
    /// line of JSON (keys sorted, ISO 8601 times) until it ends; `slot` is held as long as the stream is written.
    static func eventStream<Element: Sendable>(
        _ stream: AsyncStream<Element>, opening: String? = nil, holding slot: EventStreamSlots.Slot,
        event: @escaping @Sendable (Element, JSONEncoder) throws -> (name: String, json: Data)
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-store"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                // Held while the stream is written; freed when the response is gone.
                defer { _ = slot }
                let encoder = JSONEncoder()
                encoder.dateEncodingStrategy = .iso8601
                encoder.outputFormatting = [.sortedKeys]
                if let opening { try await writer.write(ByteBuffer(string: opening)) }
                for await element in stream {
                    let (name, json) = try event(element, encoder)
                    let data = String(decoding: json, as: UTF8.self)
                    try await writer.write(ByteBuffer(string: "event: \(name)\ndata: \(data)\n\n"))
                }
                try await writer.finish(nil)
            })
    }
}
