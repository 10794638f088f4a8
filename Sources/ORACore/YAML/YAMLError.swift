/// A mistake in a YAML file an administrator wrote, with where it is and what is wrong, in words they understand.
public struct YAMLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where the mistake is; `nil` when it concerns the file as a whole.
    public var location: SourceLocation?
    /// The file the mistake is in, used when there is no location.
    public var file: String
    /// The dotted path of the setting, for example `database.port`; empty for the document itself.
    public var keyPath: String
    /// What is wrong, as a sentence fragment without a trailing period.
    public var message: String

    /// Creates an error.
    public init(file: String, location: SourceLocation?, keyPath: String, message: String) {
        self.file = file
        self.location = location
        self.keyPath = keyPath
        self.message = message
    }

    /// One line: `file:line:column: key.path: message`.
    public var description: String {
        let place = location.map(String.init(describing:)) ?? file
        return keyPath.isEmpty ? "\(place): \(message)" : "\(place): \(keyPath): \(message)"
    }
}
