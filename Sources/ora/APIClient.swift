import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Calls the ora server's JSON API.
struct APIClient {
    var server: String
    var token: String?

    struct Answer {
        var status: UInt
        var body: String

        func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            do {
                return try decoder.decode(type, from: Data(body.utf8))
            } catch {
                throw fail("the server's answer was not understood", code: 1)
            }
        }

        /// The error to exit with: the server's message, and an exit code by kind (2 refused, 3 unavailable).
        func failure() -> ExitCode {
            let answer = try? JSONDecoder().decode(ErrorAnswer.self, from: Data(body.utf8))
            for line in answer?.errors ?? [] { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            let message = answer?.message ?? "the server answered HTTP \(status)"
            switch status {
            case 401, 403, 409, 422, 429: return fail(message, code: 2)
            case 503: return fail(message, code: 3)
            default: return fail(message, code: 1)
            }
        }
    }

    /// The server's error answer: a message and, for an invalid policy set, one line per mistake.
    struct ErrorAnswer: Decodable {
        var message: String
        var errors: [String]?
    }

    func send(_ method: String, _ path: String, json: [String: String]? = nil) async throws -> Answer {
        try await send(method, path, body: try json.map { try JSONEncoder().encode($0) })
    }

    func send(_ method: String, _ path: String, encoding value: some Encodable) async throws -> Answer {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return try await send(method, path, body: try encoder.encode(value))
    }

    /// GETs `path` and copies the body to standard output as it arrives, whatever its size.
    /// - Throws: the server's error, when it answered with one.
    func download(_ path: String) async throws {
        var request = HTTPClientRequest(url: server + path)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .hours(24))
        } catch {
            throw fail("cannot reach \(server): \(error)", code: 3)
        }
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw Answer(status: response.status.code, body: String(buffer: body)).failure()
        }
        do {
            for try await chunk in response.body {
                FileHandle.standardOutput.write(Data(chunk.readableBytesView))
            }
        } catch {
            throw fail("the download from \(server) broke off: \(error)", code: 3)
        }
    }

    /// - Parameter timeout: how long to wait for the whole answer; long-running requests (verifying a large audit
    ///   log) pass more.
    func send(_ method: String, _ path: String, body: Data?, timeout: TimeAmount = .seconds(30)) async throws -> Answer
    {
        var request = HTTPClientRequest(url: server + path)
        request.method = HTTPMethod(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            return Answer(status: response.status.code, body: String(buffer: body))
        } catch {
            throw fail("cannot reach \(server): \(error)", code: 3)
        }
    }
}
