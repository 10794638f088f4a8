public import Foundation
public import ORACore
import PostgresNIO

extension AuditLog {
    /// A month partition taken out of the audit log.
    public struct DetachedPartition: Sendable, Equatable {
        /// The table that now stands alone, to be dumped and dropped.
        public var table: String
        /// How many events it holds.
        public var events: Int64
        /// Its first and last sequence.
        public var firstSequence: Int64
        /// Its last sequence.
        public var lastSequence: Int64
    }

    /// Why old events cannot be detached.
    public enum RetentionError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The partitions to detach are not the oldest events: detaching them would leave a hole in the chain.
        case notOldest(table: String)

        public var description: String {
            switch self {
            case .notOldest(let table):
                "\(table) does not hold the oldest events in the chain (older ones are in another partition, such as "
                    + "audit_events_default); detach in order of time, or leave it"
            }
        }
    }

    /// Detaches the month partitions that end on or before `date`, oldest first, each recorded in the chain as
    /// `audit.partition_detached` (with its last sequence and hash, so that verification continues after it) in
    /// the same transaction. The partitions stay in the database as ordinary tables until an administrator dumps
    /// and drops them. Needs the role that owns the audit log; the server's role cannot do it.
    /// - Returns: what was detached; empty when nothing is old enough.
    public func detachPartitions(endingBy date: Date, actor: AuditActor) async throws -> [DetachedPartition] {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.chainLockKey))", logger: logger)
            let rows = try await connection.query(
                """
                SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'audit_events'::regclass AND c.relname ~ '^audit_events_[0-9]{4}_[0-9]{2}$'
                    AND to_date(substr(c.relname, 14), 'YYYY_MM') + interval '1 month' <= \(date)::timestamptz
                ORDER BY c.relname
                """,
                logger: logger)
            var tables: [String] = []
            for try await name in rows.decode(String.self) { tables.append(name) }
            var detached: [DetachedPartition] = []
            for table in tables {
                // Only identifiers matched by the pattern above reach this SQL.
                let summary = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT count(*), min(sequence), max(sequence),
                                (SELECT encode(hash, 'hex') FROM \(table) ORDER BY sequence DESC LIMIT 1),
                                (SELECT min(sequence) FROM audit_events)
                            FROM \(table)
                            """), logger: logger)
                var row: (Int64, Int64?, Int64?, String?, Int64?)?
                for try await value in summary.decode((Int64, Int64?, Int64?, String?, Int64?).self) { row = value }
                guard let (count, first, last, lastHash, oldest) = row else { continue }
                if let first, first != oldest { throw RetentionError.notOldest(table: table) }
                let event = AuditEvent(
                    .auditPartitionDetached, time: AuditTimestamp(Date()), actor: actor, outcome: .success,
                    details: [
                        "partition": .string(table), "events": .integer(count),
                        "first_sequence": first.map { .integer($0) } ?? .null,
                        "last_sequence": last.map { .integer($0) } ?? .null, "last_hash": .text(lastHash),
                    ])
                _ = try await Self.append([event], on: connection, logger: logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "ALTER TABLE audit_events DETACH PARTITION \(table)"), logger: logger)
                detached.append(
                    DetachedPartition(table: table, events: count, firstSequence: first ?? 0, lastSequence: last ?? 0))
            }
            return detached
        }
    }
}
