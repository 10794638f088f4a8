import ORACore

/// What a session's watcher is told: its state, at the start and at every change, and each chat line as it is
/// delivered.
enum SessionEvent: Sendable, Hashable {
    /// The session's state now.
    case state(SessionSnapshot)
    /// A chat line, recorded and numbered.
    case chat(ChatMessage)
}
