import Yams

/// A position in a text file that a person edits: the file's name, a line and a column, both counted from 1.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file's path as the person named it.
    public var file: String
    /// The line, from 1.
    public var line: Int
    /// The column, from 1, in Unicode scalars.
    public var column: Int

    /// Creates a location.
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The position of a libyaml mark in `file`.
    init(_ mark: Mark, in file: String) {
        self.init(file: file, line: mark.line, column: mark.column)
    }

    /// `file:line:column`, the form editors and compilers use.
    public var description: String { "\(file):\(line):\(column)" }
}
