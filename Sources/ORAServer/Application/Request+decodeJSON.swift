import Hummingbird

extension Request {
    /// Decodes the JSON body, or answers 400 `invalid_request` saying what was expected.
    func decodeJSON<Body: Decodable>(
        _ type: Body.Type,
        context: ORARequestContext,
        expected: String
    ) async throws -> Body {
        do {
            return try await decode(as: type, context: context)
        } catch {
            throw APIError(.badRequest, code: "invalid_request", message: "expected a JSON object \(expected)")
        }
    }
}
