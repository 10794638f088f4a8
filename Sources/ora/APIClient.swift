import ArgumentParser
import Foundation
import ORAClient

/// The server's API for one command, and how its failures become exits.
struct APIClient {
    var server: String
    var token: String?
    /// The CA the server is verified with; nil for the system's CAs.
    var caFile: String?
    /// The generated client of Docs/openapi.yaml.
    var api: Client

    /// - Parameter timeout: how long a whole answer may take; long work (verifying a large audit log) passes more.
    init(server: String, token: String? = nil, caFile: String? = nil, timeout: Duration = .seconds(30)) {
        self.server = server
        self.token = token
        self.caFile = caFile
        // `ServerOption.url` checked the address already.
        api = Client(server: URL(string: server)!, token: token, caFile: caFile, timeout: timeout)
    }

    /// The same server and login, for answers that may take up to `timeout` (event streams).
    func waiting(_ timeout: Duration) -> APIClient {
        APIClient(server: server, token: token, caFile: caFile, timeout: timeout)
    }

    /// The console's page of a session, for a browser.
    func consolePage(ofSession id: String) -> String {
        (server.hasSuffix("/") ? String(server.dropLast()) : server) + "/sessions/" + id.lowercased()
    }

    /// Runs `operation` against the server.
    /// - Throws: on a refusal, the server's message (and one line per mistake) on standard error and exit 2 when
    ///   refused, 3 when unavailable, 1 otherwise; exit 3 when the server cannot be reached; exit 1 when its answer
    ///   is not one this client understands.
    func call<Value>(_ operation: (Client) async throws -> Value) async throws -> Value {
        do {
            return try await operation(api)
        } catch {
            throw failure(error)
        }
    }

    /// The exit for an error `call` or a stream read from the server threw.
    func failure(_ error: any Error) -> any Error {
        if error is ExitCode || error is CancellationError { return error }
        switch CallFailure(error) {
        case .refused(let refusal):
            for line in refusal.errors { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            switch refusal.status {
            case 401, 403, 409, 422, 429: return fail(refusal.message, code: 2)
            case 503: return fail(refusal.message, code: 3)
            default: return fail(refusal.message, code: 1)
            }
        case .unreachable(let cause): return fail("cannot reach \(server): \(cause)", code: 3)
        case .notUnderstood(let cause): return fail("the server's answer was not understood: \(cause)", code: 1)
        }
    }
}

/// Prints `value` as one line of JSON, keys sorted, times as the server writes them (whole seconds, or microseconds
/// when they have a fraction).
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        let whole = date.timeIntervalSince1970.rounded(.down) == date.timeIntervalSince1970
        try container.encode(whole ? try RFC3339Transcoder().encode(date) : RFC3339Transcoder.microseconds(date))
    }
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
