import ORACore
import ORADirectory

extension DirectoryClient {
    /// The computer called `name`, for an API request.
    /// - Parameter missing: the answer when the directory has no such computer.
    /// - Throws: `missing` when there is none; `APIError` 503 when the directory is unavailable, 502 when its
    ///   answer cannot be used.
    func computer(named name: String, otherwise missing: APIError) async throws(APIError) -> Computer {
        let found: Computer?
        do {
            found = try await computer(named: name)
        } catch {
            throw APIError.directory(error)
        }
        guard let found else { throw missing }
        return found
    }
}
