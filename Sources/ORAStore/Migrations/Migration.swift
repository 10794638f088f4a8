import Crypto
import ORACore

/// One forward-only change to ora's schema. Once released, a migration is never edited: its checksum is stored
/// when it is applied and checked on every start, so an edited migration stops the server instead of leaving
/// replicas with different schemas.
public struct Migration: Sendable, Hashable {
    /// Position in the sequence, from 1, without gaps.
    public var version: Int
    /// A short name saying what the migration does.
    public var name: String
    /// The statements, run in order in one transaction.
    public var statements: [String]

    /// Creates a migration.
    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// SHA-256 of the statements, hex-encoded: what the database remembers of the migration's content.
    public var checksum: String {
        var hash = SHA256()
        for statement in statements {
            hash.update(data: Array(statement.utf8))
            hash.update(data: [0])
        }
        return Hex.encode(hash.finalize())
    }
}
