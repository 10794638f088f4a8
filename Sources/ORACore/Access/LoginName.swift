import Foundation

/// A user name as typed at login, bounded and normalised before it reaches the directory, the login limits or the
/// audit log.
///
/// Directories match names loosely: OpenLDAP's `caseIgnoreMatch` and Active Directory ignore case, leading and
/// trailing spaces (no-break spaces among them) and compatibility forms such as fullwidth letters, so ` lena.wolf`,
/// `lena.wolf\u{A0}` and `ｌｅｎａ.wolf` all log in as lena.wolf. The normalised name is what the directory is asked
/// for, and its `key` is what failed logins are counted under, so that every spelling counts against one account.
public struct LoginName: Sendable, Hashable, CustomStringConvertible {
    /// The most characters a user name may have.
    public static let maximumLength = 256

    /// The name as the directory is asked for it: compatibility forms folded (NFKC), surrounding white space
    /// removed, inner runs of white space made one space.
    public let text: String
    /// The name that failed logins are counted under: `text` in lower case.
    public let key: String

    public var description: String { text }

    /// Bounds and normalises `typed`.
    /// - Throws: `LoginNameError` when it is empty, longer than `maximumLength` characters, or holds control or
    ///   invisible formatting characters.
    public init(typed: String) throws(LoginNameError) {
        // Bounded before any work on it: a megabyte of name costs nothing to refuse.
        guard AuditText.isBounded(typed, to: Self.maximumLength * 2),
            !typed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw LoginNameError() }
        let folded = typed.precomposedStringWithCompatibilityMapping
        var text = ""
        var pendingSpace = false
        for scalar in folded.unicodeScalars {
            if scalar.properties.isWhitespace {
                pendingSpace = !text.isEmpty
                continue
            }
            if pendingSpace { text.unicodeScalars.append(" ") }
            pendingSpace = false
            text.unicodeScalars.append(scalar)
        }
        guard !text.isEmpty, AuditText.isBounded(text, to: Self.maximumLength),
            !AuditText.hasInvisibleFormatting(text)
        else { throw LoginNameError() }
        self.text = text
        self.key = text.lowercased()
    }
}

/// A user name that cannot be a directory account's.
public struct LoginNameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Creates the error.
    public init() {}

    public var description: String {
        "the user name must be 1 to \(LoginName.maximumLength) characters, without control or invisible formatting characters"
    }
}
