/// Why the directory could not answer a question about a person or a machine, in the two kinds callers act on.
public enum DirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The user name or password is wrong, or the name matches no single person. Callers answer 401 and say no more.
    case invalidCredentials
    /// The directory cannot be reached or used right now; nothing can be decided (HTTP 503).
    case unavailable(reason: String)
    /// The directory answered, but not in a way ora can use (a misconfigured filter, a limit exceeded).
    case failed(reason: String)

    public var description: String {
        switch self {
        case .invalidCredentials: return "invalid user name or password"
        case .unavailable(let reason): return "directory unavailable: \(reason)"
        case .failed(let reason): return "directory error: \(reason)"
        }
    }
}
