public import Foundation
public import ORACore
import PostgresNIO

extension MachineStore {
    /// What the directory said about a machine when it was last looked up.
    public struct DirectoryFacts: Sendable, Hashable {
        /// Its computer object with its groups; `nil` when the directory had no computer of that name.
        public var computer: Computer?
        /// When it was looked up.
        public var checkedAt: Date

        /// Creates facts.
        public init(computer: Computer?, checkedAt: Date) {
            self.computer = computer
            self.checkedAt = checkedAt
        }
    }

    /// Which machines a search asks for. Every condition given must hold.
    public struct MachineSearch: Sendable, Hashable {
        /// Text the name contains, in any case.
        public var nameContains: String?
        /// An OU or container the computer object lies below (at any depth), as last looked up.
        public var container: DistinguishedName?
        /// A computer group the machine belongs to (nested included), as last looked up.
        public var group: DistinguishedName?
        /// Only machines whose agent is connected to a running replica.
        public var onlineOnly: Bool

        /// Creates a search; with no arguments, every machine.
        public init(
            nameContains: String? = nil, container: DistinguishedName? = nil, group: DistinguishedName? = nil,
            onlineOnly: Bool = false
        ) {
            self.nameContains = nameContains
            self.container = container
            self.group = group
            self.onlineOnly = onlineOnly
        }
    }

    /// A machine as a search lists it.
    public struct ListedMachine: Sendable, Hashable {
        /// Its name, lower case.
        public var name: String
        /// Whether its agent is connected to a running replica.
        public var online: Bool
        /// Since when it is online, or when it was last online.
        public var lastSeenAt: Date?
        /// When an administrator revoked it, if one did.
        public var revokedAt: Date?
        /// The directory's facts at the last look-up; `nil` when it was never looked up.
        public var directory: DirectoryFacts?
    }

    /// An OU, container or group that machines lie in, and how many do.
    public struct Scope: Sendable, Hashable {
        /// The entry, as the directory spells it.
        public var dn: DistinguishedName
        /// How many enrolled machines, not revoked, lie in it.
        public var machines: Int
    }

    /// Up to `limit` machines matching `search` whose names come after `after`, by name.
    public func machines(
        matching search: MachineSearch, after: String? = nil, limit: Int
    ) async throws -> [ListedMachine] {
        var query = Self.condition(search)
        let head = """
            SELECT m.name, \(Self.onlineExpression), m.last_seen_at, m.revoked_at, m.directory_dn, m.directory_groups,
                m.directory_checked_at
            FROM machines m WHERE
            """
        query.sql = head + " " + query.sql
        if let after {
            query.binds.append(after)
            query.sql += " AND m.name > $\(query.binds.count)"
        }
        query.binds.append(Int64(limit))
        query.sql += " ORDER BY m.name LIMIT $\(query.binds.count)"
        var machines: [ListedMachine] = []
        let rows = try await client.query(query, logger: logger)
        for try await row in rows.decode((String, Bool, Date?, Date?, String?, [String], Date?).self) {
            machines.append(
                ListedMachine(
                    name: row.0, online: row.1, lastSeenAt: row.2, revokedAt: row.3,
                    directory: try row.6.map { checked in
                        DirectoryFacts(
                            computer: try row.4.map { dn in
                                Computer(
                                    name: row.0, dn: try DistinguishedName(dn),
                                    groups: Set(try row.5.map { group in try DistinguishedName(group) }))
                            },
                            checkedAt: checked)
                    }))
        }
        return machines
    }

    /// How many machines match `search`.
    public func countMachines(matching search: MachineSearch) async throws -> Int {
        var query = Self.condition(search)
        query.sql = "SELECT count(*) FROM machines m WHERE " + query.sql
        for try await count in try await client.query(query, logger: logger).decode(Int64.self) {
            return Int(count)
        }
        return 0
    }

    /// The OUs and containers, and the computer groups, that enrolled machines (not revoked) lie in as last looked
    /// up, each with how many, by name.
    public func scopes() async throws -> (containers: [Scope], groups: [Scope]) {
        func scopes(_ keys: String, _ names: String) async throws -> [Scope] {
            let rows = try await client.query(
                """
                SELECT min(s.name), count(*) FROM machines m,
                    unnest(m.\(unescaped: keys), m.\(unescaped: names)) AS s(key, name)
                WHERE m.revoked_at IS NULL
                GROUP BY s.key ORDER BY min(s.name)
                """,
                logger: logger)
            var scopes: [Scope] = []
            for try await (name, count) in rows.decode((String, Int64).self) {
                scopes.append(Scope(dn: try DistinguishedName(name), machines: Int(count)))
            }
            return scopes
        }
        return (
            try await scopes("directory_container_keys", "directory_containers"),
            try await scopes("directory_group_keys", "directory_groups")
        )
    }

    /// Stores what the directory said about the machine called `name` at `time`: its computer object, or `nil`
    /// when there was none.
    public func recordDirectoryFacts(of name: String, _ computer: Computer?, at time: Date) async throws {
        // Domain components are the root of everything; a search by them would find every machine.
        let containers = computer?.dn.ancestors.filter { !$0.isDomainComponent } ?? []
        let groups = computer?.groups.sorted { $0.normalized < $1.normalized } ?? []
        _ = try await client.query(
            """
            UPDATE machines SET directory_dn = \(computer?.dn.original),
                directory_containers = \(containers.map(\.original)),
                directory_container_keys = \(containers.map(\.normalized)),
                directory_groups = \(groups.map(\.original)), directory_group_keys = \(groups.map(\.normalized)),
                directory_checked_at = \(time), directory_claimed_at = NULL
            WHERE name = \(name)
            """,
            logger: logger)
    }

    /// Takes up to `limit` machines (not revoked) whose facts were last looked up before `checkedBefore`, or
    /// never, the oldest first, for this caller to look up: for a few minutes no other caller (another replica)
    /// takes them.
    /// - Returns: their names.
    public func claimDirectoryChecks(checkedBefore: Date, limit: Int, at time: Date) async throws -> [String] {
        let claimExpired = time.addingTimeInterval(-300)
        let rows = try await client.query(
            """
            UPDATE machines SET directory_claimed_at = \(time)
            WHERE name IN (
                SELECT name FROM machines
                WHERE revoked_at IS NULL
                    AND (directory_checked_at IS NULL OR directory_checked_at < \(checkedBefore))
                    AND (directory_claimed_at IS NULL OR directory_claimed_at < \(claimExpired))
                ORDER BY directory_checked_at NULLS FIRST
                LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED)
            RETURNING name
            """,
            logger: logger)
        var names: [String] = []
        for try await name in rows.decode(String.self) { names.append(name) }
        return names
    }

    /// Whether a machine's agent is connected to a running replica, as a column of `machines m`.
    private static let onlineExpression = """
        EXISTS (SELECT 1 FROM server_instances i WHERE i.id = m.connected_instance
            AND i.last_seen_at > now() - interval '\(ReplicaStore.livenessWindow)')
        """

    /// The conditions of `search` on `machines m`, with their values bound.
    private static func condition(_ search: MachineSearch) -> PostgresQuery {
        var query: PostgresQuery = "true"
        if let text = search.nameContains?.lowercased(), !text.isEmpty {
            query.binds.append(text)
            query.sql += " AND strpos(m.name, $\(query.binds.count)) > 0"
        }
        if let container = search.container {
            query.binds.append([container.normalized])
            query.sql += " AND m.directory_container_keys @> $\(query.binds.count)"
        }
        if let group = search.group {
            query.binds.append([group.normalized])
            query.sql += " AND m.directory_group_keys @> $\(query.binds.count)"
        }
        if search.onlineOnly { query.sql += " AND " + onlineExpression }
        return query
    }
}
