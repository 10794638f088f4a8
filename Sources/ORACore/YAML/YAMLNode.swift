public import Yams

/// A value in a YAML document, read strictly: every accessor names the setting and its position when the value
/// does not have the expected shape, so administrators get an answer they can act on.
public struct YAMLNode {
    /// The node as Yams composed it.
    public let node: Node
    /// The dotted path to this node, for example `database.port` or `directory.uris[1]`.
    public let keyPath: String
    /// The file the node comes from.
    public let file: String

    /// Creates a reader for a node of `file` at `keyPath`.
    public init(node: Node, keyPath: String, file: String) {
        self.node = node
        self.keyPath = keyPath
        self.file = file
    }

    /// Parses a whole YAML document.
    /// - Parameters:
    ///   - text: the document.
    ///   - file: the file's path, for error messages.
    /// - Returns: the root node, or `nil` for an empty document.
    /// - Throws: `YAMLError` with the position of a syntax error.
    public static func parse(_ text: String, file: String) throws(YAMLError) -> YAMLNode? {
        do {
            // The basic resolver leaves every scalar as text: ora reads types itself, and implicit typing by
            // regular expression is most of libyaml-through-Yams' cost.
            guard let node = try Yams.compose(yaml: text, .basic) else { return nil }
            return YAMLNode(node: node, keyPath: "", file: file)
        } catch let error as YamlError {
            throw YAMLError(syntax: error, file: file)
        } catch {
            throw YAMLError(file: file, location: nil, keyPath: "", message: "not valid YAML")
        }
    }

    /// Where this node starts in its file.
    public var location: SourceLocation? {
        node.mark.map { SourceLocation($0, in: file) }
    }

    /// An error about this node.
    public func error(_ message: String) -> YAMLError {
        YAMLError(file: file, location: location, keyPath: keyPath, message: message)
    }

    /// Whether the node is a mapping (for a setting that takes either a value or a mapping).
    public var isMapping: Bool {
        if case .mapping = node { return true }
        return false
    }

    /// The node as a mapping whose keys are all known.
    public func mapping() throws(YAMLError) -> YAMLMapping {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping of settings, found \(kind)") }
        return try YAMLMapping(mapping, keyPath: keyPath, file: file)
    }

    /// The node as text.
    public func string() throws(YAMLError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a text value, found \(kind)") }
        return scalar.string
    }

    /// The node as text that is not empty.
    public func nonEmptyString() throws(YAMLError) -> String {
        let value = try string()
        guard !value.allSatisfy(\.isWhitespace) else { throw error("must not be empty") }
        return value
    }

    /// The node as a whole number in `range`.
    public func integer(in range: ClosedRange<Int>) throws(YAMLError) -> Int {
        let text = try string()
        guard let value = Int(text), range.contains(value) else {
            throw error("expected a whole number from \(range.lowerBound) to \(range.upperBound), found \"\(text)\"")
        }
        return value
    }

    /// The node as `true` or `false`.
    public func bool() throws(YAMLError) -> Bool {
        let text = try string()
        switch text {
        case "true": return true
        case "false": return false
        default: throw error("expected true or false, found \"\(text)\"")
        }
    }

    /// The node as a duration such as `5s`, `2h` or `1h30m`.
    public func duration() throws(YAMLError) -> Duration {
        let text = try string()
        guard let value = Duration(text: text) else {
            throw error("expected a duration such as 500ms, 5s, 10m or 2h, found \"\(text)\"")
        }
        return value
    }

    /// The node as a duration within `range`.
    public func duration(in range: ClosedRange<Duration>) throws(YAMLError) -> Duration {
        let value = try duration()
        guard range.contains(value) else {
            throw error(
                range.lowerBound == .zero
                    ? "must be at most \(range.upperBound.text)"
                    : "must be between \(range.lowerBound.text) and \(range.upperBound.text)")
        }
        return value
    }

    /// The node as one of `choices`.
    public func choice(_ choices: [String]) throws(YAMLError) -> String {
        let text = try string()
        guard choices.contains(text) else {
            throw error("expected one of \(choices.joined(separator: ", ")), found \"\(text)\"")
        }
        return text
    }

    /// The node as a list; each element keeps its own position and key path (`key[0]`, `key[1]`, …).
    public func list() throws(YAMLError) -> [YAMLNode] {
        guard case .sequence(let sequence) = node else { throw error("expected a list, found \(kind)") }
        return sequence.enumerated().map { index, element in
            YAMLNode(node: element, keyPath: "\(keyPath)[\(index)]", file: file)
        }
    }

    /// What kind of YAML value this is, for messages.
    var kind: String {
        switch node {
        case .scalar(let scalar): return "the value \"\(scalar.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }
}

extension YAMLError {
    /// Converts a syntax error from libyaml into a message with its position.
    init(syntax error: YamlError, file: String) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            self.init(
                file: file,
                location: SourceLocation(mark, in: file),
                keyPath: "",
                message: "not valid YAML: \(detail)"
            )
        case .duplicatedKeysInMapping(let duplicates, let context):
            self.init(
                file: file,
                location: SourceLocation(context.mark, in: file),
                keyPath: "",
                message: "\(duplicates.sorted().joined(separator: ", ")) is set twice in one mapping; keep one"
            )
        case .reader(let problem, _, _, _):
            self.init(file: file, location: nil, keyPath: "", message: "not valid YAML: \(problem)")
        default:
            self.init(file: file, location: nil, keyPath: "", message: "not valid YAML")
        }
    }
}
