/// How alike two names are, as a person who mistyped one sees it: case, spaces and punctuation aside, the fewest
/// characters to insert, delete or change (Levenshtein) to turn one into the other.
public enum NameSimilarity {
    /// The edits between `a` and `b`, compared without case, spaces and punctuation.
    public static func distance(_ a: String, _ b: String) -> Int {
        let left = Array(folded(a))
        let right = Array(folded(b))
        guard !left.isEmpty else { return right.count }
        guard !right.isEmpty else { return left.count }
        var previous = Array(0...right.count)
        var current = Array(repeating: 0, count: right.count + 1)
        for (i, character) in left.enumerated() {
            current[0] = i + 1
            for (j, other) in right.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (character == other ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[right.count]
    }

    /// Of `candidates`, the closest to `name` that are close enough to be what was meant (at most a third of its
    /// letters apart): those at the least distance, at most `limit`, in order.
    public static func nearest(to name: String, in candidates: [String], limit: Int = 3) -> [String] {
        let allowed = max(2, folded(name).count / 3)
        var scored: [(name: String, distance: Int)] = []
        for candidate in candidates {
            let edits = distance(name, candidate)
            if edits <= allowed { scored.append((candidate, edits)) }
        }
        guard let best = scored.map(\.distance).min() else { return [] }
        return scored.filter { $0.distance == best }.map(\.name).sorted().prefix(limit).map { $0 }
    }

    private static func folded(_ text: String) -> [Character] {
        text.lowercased().filter { $0.isLetter || $0.isNumber }.map { $0 }
    }
}
