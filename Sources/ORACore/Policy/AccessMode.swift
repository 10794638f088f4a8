/// What a helper may do on the novice's machine. `control` includes `view`.
public enum AccessMode: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// See the screen.
    case view
    /// See the screen and, once the novice grants it separately, use keyboard and mouse.
    case control

    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs == .view && rhs == .control
    }
}
