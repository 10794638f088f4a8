import Foundation
import HTTPTypes
import OpenAPIRuntime
import Testing

@testable import ORAClient

@Suite("The API's client")
struct ORAClientTests {
    @Test("audit times keep their microseconds; whole-second times and offsets read as the same moment")
    func times() throws {
        let transcoder = RFC3339Transcoder()
        let precise = try transcoder.decode("2026-12-05T17:25:35.123456Z")
        #expect(RFC3339Transcoder.microseconds(precise) == "2026-12-05T17:25:35.123456Z")
        #expect(
            RFC3339Transcoder.microseconds(try transcoder.decode("2026-12-05T17:25:35.000001Z")).hasSuffix(".000001Z"))
        let whole = try transcoder.decode("2026-12-05T17:25:35Z")
        #expect(try transcoder.decode("2026-12-05T18:25:35+01:00") == whole)
        #expect(try transcoder.encode(whole) == "2026-12-05T17:25:35Z")
        #expect(try transcoder.encode(precise) == "2026-12-05T17:25:35Z", "requests carry whole seconds")
        for bad in ["", "yesterday", "2026-12-05T17:25:35.Z", "2026-12-05T17:25:35.12x", "2026-13-05T17:25:35Z"] {
            #expect(throws: DecodingError.self, "\(bad)") { try transcoder.decode(bad) }
        }
    }

    @Test("an answer outside 2xx is thrown as the server's refusal, with its code, message, mistakes and Retry-After")
    func refusals() async throws {
        let middleware = RefusalMiddleware()
        func answer(
            _ status: Int, _ body: String, headers: HTTPFields = [:], operation: String = "offerHelp"
        ) async throws -> (HTTPResponse, HTTPBody?) {
            try await middleware.intercept(
                HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/"), body: nil,
                baseURL: URL(string: "http://localhost")!, operationID: operation
            ) { _, _, _ in (HTTPResponse(status: .init(code: status), headerFields: headers), HTTPBody(body)) }
        }
        await #expect(throws: ServerRefusal(status: 429, code: "too_many_offers", message: "wait", retryAfter: 54)) {
            _ = try await answer(
                429, #"{"error": "too_many_offers", "message": "wait"}"#, headers: [.retryAfter: "54"])
        }
        await #expect(
            throws: ServerRefusal(status: 422, code: "invalid_policy", message: "2 mistakes", errors: ["a", "b"])
        ) {
            _ = try await answer(422, #"{"error": "invalid_policy", "message": "2 mistakes", "errors": ["a", "b"]}"#)
        }
        // Not in the error shape: the status is all there is to say.
        await #expect(throws: ServerRefusal(status: 502, code: "", message: "the server answered HTTP 502")) {
            _ = try await answer(502, "<html>bad gateway</html>")
        }
        // Success passes untouched, and so does readiness's 503, which is a document of its own.
        #expect(try await answer(201, "{}").0.status == .created)
        #expect(try await answer(503, #"{"status": "not_ready"}"#, operation: "readiness").0.status.code == 503)
    }

    @Test("a refusal is found inside the runtime's error; an unreachable server is told from an answer not understood")
    func failures() {
        let refusal = ServerRefusal(status: 403, code: "denied_by_policy", message: "no")
        let wrapped = ClientError(
            operationID: "offerHelp", operationInput: (), request: nil, requestBody: nil, baseURL: nil, response: nil,
            responseBody: nil, causeDescription: "middleware", underlyingError: refusal)
        guard case .refused(let found) = CallFailure(wrapped) else { Issue.record("not a refusal"); return }
        #expect(found == refusal)
        struct Refused: Error {}
        let unreachable = ClientError(
            operationID: "getMe", operationInput: (), request: nil, requestBody: nil, baseURL: nil, response: nil,
            responseBody: nil, causeDescription: "transport", underlyingError: Refused())
        guard case .unreachable = CallFailure(unreachable) else { Issue.record("not unreachable"); return }
        let garbled = ClientError(
            operationID: "getMe", operationInput: (), request: nil, requestBody: nil, baseURL: nil,
            response: HTTPResponse(status: .ok), responseBody: nil, causeDescription: "decoding",
            underlyingError: Refused())
        guard case .notUnderstood = CallFailure(garbled) else { Issue.record("not 'not understood'"); return }
    }
}
