public import Yams

/// A YAML mapping read key by key. Keys that the reader never asked for are reported by `rejectUnknownKeys()`, so a
/// misspelt setting is an error instead of being silently ignored.
public struct YAMLMapping {
    /// The dotted path of the mapping itself.
    public let keyPath: String
    /// The file the mapping comes from.
    public let file: String
    private let entries: [(key: String, keyNode: Node, value: Node)]
    private var consumed: Set<String> = []

    init(_ mapping: Node.Mapping, keyPath: String, file: String) throws(YAMLError) {
        self.keyPath = keyPath
        self.file = file
        // Keys set twice never get here: the YAML parser refuses them (see `YAMLNode.parse`).
        var entries: [(key: String, keyNode: Node, value: Node)] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                throw YAMLError(
                    file: file, location: keyNode.mark.map { SourceLocation($0, in: file) }, keyPath: keyPath,
                    message: "keys must be plain text")
            }
            entries.append((scalar.string, keyNode, value))
        }
        self.entries = entries
    }

    /// Whether `key` is present.
    public func contains(_ key: String) -> Bool {
        entries.contains { $0.key == key }
    }

    /// The value of `key`, or `nil` when absent (an explicit YAML `null` counts as absent).
    public mutating func optional(_ key: String) -> YAMLNode? {
        consumed.insert(key)
        guard let entry = entries.first(where: { $0.key == key }) else { return nil }
        if case .scalar(let scalar) = entry.value, scalar.style == .plain,
            ["", "~", "null", "Null", "NULL"].contains(scalar.string)
        {
            return nil
        }
        return YAMLNode(node: entry.value, keyPath: Self.join(keyPath, key), file: file)
    }

    /// The value of `key`.
    /// - Throws: `YAMLError` naming the missing key.
    public mutating func required(_ key: String) throws(YAMLError) -> YAMLNode {
        guard let value = optional(key) else {
            throw YAMLError(file: file, location: location, keyPath: Self.join(keyPath, key), message: "is required")
        }
        return value
    }

    /// Throws for the first key the reader did not ask for, naming the keys that are allowed here.
    public func rejectUnknownKeys() throws(YAMLError) {
        if let first = unknownKeyErrors().first { throw first }
    }

    /// An error for every key the reader did not ask for, in file order.
    public func unknownKeyErrors(hint: (String) -> String? = { _ in nil }) -> [YAMLError] {
        let allowed = consumed.sorted().joined(separator: ", ")
        return entries.filter { !consumed.contains($0.key) }.map { entry in
            YAMLError(
                file: file,
                location: entry.keyNode.mark.map { SourceLocation($0, in: file) },
                keyPath: Self.join(keyPath, entry.key),
                message: hint(entry.key) ?? "unknown setting (allowed here: \(allowed))"
            )
        }
    }

    /// Where the mapping starts: the position of its first key.
    public var location: SourceLocation? {
        entries.first?.keyNode.mark.map { SourceLocation($0, in: file) }
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }
}
