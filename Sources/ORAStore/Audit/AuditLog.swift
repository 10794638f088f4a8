import Crypto
public import Foundation
public import Logging
public import ORACore
public import PostgresNIO

/// The audit log in PostgreSQL: one append-only, hash-chained table, partitioned by month. Appending serialises on
/// the chain head (an advisory lock), so every server replica extends the same chain.
public struct AuditLog: Sendable {
    /// The advisory lock key writers hold while they extend the chain ("ora_audt" in ASCII).
    static let chainLockKey: Int64 = 0x6f72_615f_6175_6474

    /// Which events a search, export or verification covers. Every field narrows; an empty filter is everything.
    public struct Filter: Sendable, Hashable {
        /// Events at or after this time.
        public var since: AuditTimestamp?
        /// Events before this time.
        public var until: AuditTimestamp?
        /// An event name (`offer.requested`), or a prefix ending in `.` or `.*` (`offer.*`).
        public var event: String?
        /// An event code (`ORA2001`).
        public var code: String?
        /// An operator, by DN or account name (either case).
        public var operatorName: String?
        /// A machine, by name (either case).
        public var machine: String?
        /// A remote assistance session.
        public var session: UUID?
        /// An outcome.
        public var outcome: AuditOutcome?
        /// Text that appears in the details (either case).
        public var text: String?
        /// Events from this sequence on.
        public var fromSequence: Int64?

        /// Creates a filter.
        public init(
            since: AuditTimestamp? = nil,
            until: AuditTimestamp? = nil,
            event: String? = nil,
            code: String? = nil,
            operatorName: String? = nil,
            machine: String? = nil,
            session: UUID? = nil,
            outcome: AuditOutcome? = nil,
            text: String? = nil,
            fromSequence: Int64? = nil
        ) {
            self.since = since
            self.until = until
            self.event = event
            self.code = code
            self.operatorName = operatorName
            self.machine = machine
            self.session = session
            self.outcome = outcome
            self.text = text
            self.fromSequence = fromSequence
        }
    }

    /// One page of a search, newest first.
    public struct Page: Sendable {
        /// The events.
        public var events: [ChainedAuditEvent]
        /// Pass as `before` for the next page; `nil` when this was the last.
        public var next: Int64?
    }

    let client: PostgresClient
    let logger: Logger

    /// Creates the log on `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    // MARK: Appending

    /// Appends `events` to the chain on `connection`, which must be inside a transaction: the events are linked in
    /// order after the head and become visible when the transaction commits. Events whose id is already stored
    /// (a retry after an answer was lost) are skipped, so appending is idempotent.
    /// - Returns: the events written, chained.
    @discardableResult
    public static func append(
        _ events: [AuditEvent],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [ChainedAuditEvent] {
        try await append(events.map(PreparedEvent.init), on: connection, logger: logger, checkingForStored: true)
    }

    /// An event encoded ahead of its place in the chain: done by each caller in parallel, so that little is left
    /// for the one writer that holds the chain lock.
    public struct PreparedEvent: Sendable {
        /// The event and its canonical encoding.
        public let chain: PreparedAuditEvent
        /// The event's columns as the INSERT sends them, all but its place in the chain.
        let row: Row

        /// Encodes `event`.
        public init(_ event: AuditEvent) {
            chain = PreparedAuditEvent(event)
            row = Row(chain)
        }

        /// The most bytes of an indexed column (actor, account, machine) and of the source address: well below
        /// what one index entry can hold (about 2,700 bytes), so an event that passed the edge can always be stored.
        public static let longestIndexedText = 1024
        /// The most bytes of the encoded details.
        public static let longestDetails = 256 * 1024

        /// Why the database would refuse this event, if it would: the column and its size; `nil` when it fits. An
        /// event is checked before it joins a batch, so one oversized event is refused alone and never fails the
        /// events written with it.
        public var oversizedColumn: String? {
            for (column, text) in [
                ("actor_id", row.actorID), ("actor_name", row.actorName), ("machine", row.machine),
                ("source_address", row.source),
            ] where text.utf8.count > Self.longestIndexedText {
                return "\(column) has \(text.utf8.count) bytes, more than \(Self.longestIndexedText)"
            }
            if row.details.utf8.count > Self.longestDetails {
                return "details have \(row.details.utf8.count) bytes, more than \(Self.longestDetails)"
            }
            return nil
        }
    }

    /// Whether `error` is the database refusing what was sent (a value out of range, a constraint, a size limit)
    /// rather than being unavailable: the same events would be refused again, and another batch without them
    /// would not.
    public static func isRefusedData(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError {
            if let closureError = transaction.closureError { return isRefusedData(closureError) }
            return false
        }
        guard let error = error as? PSQLError, error.code == .server,
            let state = error.serverInfo?[.sqlState]
        else { return false }
        // 22: data exception; 23: integrity constraint violation; 54: program limit exceeded (an index row too big).
        return state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("54")
    }

    /// The columns of one event, as text where PostgreSQL parses them (time, details, policy names) and with the
    /// absent ones marked in `nulls` (arrays of parameters cannot hold NULL).
    struct Row: Sendable {
        var id: UUID
        var time: String
        var event: String
        var code: String
        var actorKind: String
        var actorID: String
        var actorName: String
        var machine: String
        var session: String
        var source: String
        var policyVersion: Int64
        var policyNames: String
        var outcome: String
        var details: String
        /// Bit 0 actor name, 1 machine, 2 session, 3 source, 4 policy version, 5 policy names: absent.
        var nulls: Int32

        init(_ prepared: PreparedAuditEvent) {
            let event = prepared.event
            var nulls: Int32 = 0
            func value(_ text: String?, bit: Int32) -> String {
                if text == nil { nulls |= 1 << bit }
                return text ?? ""
            }
            id = event.id
            time = prepared.timeText
            self.event = event.name
            code = event.code
            actorKind = event.actor.kind.rawValue
            actorID = event.actor.id
            actorName = value(event.actor.name, bit: 0)
            machine = value(event.machine, bit: 1)
            session = value(event.session?.lowercasedText, bit: 2)
            source = value(event.source, bit: 3)
            policyVersion = event.policy?.version ?? 0
            if event.policy?.version == nil { nulls |= 1 << 4 }
            policyNames = value(event.policy.map { Self.arrayLiteral($0.names) }, bit: 5)
            outcome = event.outcome.rawValue
            details = prepared.detailsText
            self.nulls = nulls
        }

        /// `names` as a PostgreSQL array literal: `{"a","b"}`.
        static func arrayLiteral(_ names: [String]) -> String {
            var literal: [UInt8] = [UInt8(ascii: "{")]
            for (index, name) in names.enumerated() {
                if index > 0 { literal.append(UInt8(ascii: ",")) }
                literal.append(UInt8(ascii: "\""))
                // `"` and `\` are single bytes in UTF-8, never part of another character's.
                for byte in name.utf8 {
                    if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { literal.append(UInt8(ascii: "\\")) }
                    literal.append(byte)
                }
                literal.append(UInt8(ascii: "\""))
            }
            literal.append(UInt8(ascii: "}"))
            return String(decoding: literal, as: UTF8.self)
        }
    }

    /// Appends events encoded ahead; see `append(_:on:logger:)`.
    /// - Parameter checkingForStored: whether to look for events stored already. A first attempt may skip the
    ///   look-up: an event stored before makes the unique key refuse the whole batch, nothing is written, and the
    ///   retry, which checks, stores the rest.
    /// - Parameter lockWait: how long to wait for the chain lock before the transaction fails; no limit when nil.
    @discardableResult
    public static func append(
        _ events: [PreparedEvent],
        on connection: PostgresConnection,
        logger: Logger,
        checkingForStored: Bool,
        lockWait: Duration? = nil
    ) async throws -> [ChainedAuditEvent] {
        guard !events.isEmpty else { return [] }
        if let lockWait {
            try await connection.query(
                "SELECT set_config('lock_timeout', \(timeoutSetting(lockWait)), true)", logger: logger)
        }
        try await connection.query("SELECT pg_advisory_xact_lock(\(chainLockKey))", logger: logger)
        var fresh = events
        if checkingForStored {
            let stored = try await storedIDs(of: events.map(\.chain.event), on: connection, logger: logger)
            if !stored.isEmpty { fresh = events.filter { !stored.contains($0.chain.event.id) } }
        }
        guard !fresh.isEmpty else { return [] }
        let batch = ChainedBatch(fresh, after: try await chainHead(on: connection, logger: logger))
        // A stored id (a first attempt does not look) violates the unique key, and the whole transaction is refused.
        // With the lock held the head cannot have moved.
        let rows = try await connection.query(batch.statement(lockWait: lockWait), logger: logger)
        for try await appended in rows.decode(Bool.self) where !appended { throw AuditLogError.headMoved }
        return batch.chained
    }

    /// Events chained after a head, in memory, ready for `appendBehind`.
    public struct ChainedBatch: Sendable {
        let events: [PreparedEvent]
        /// The head's hash, then each event's, 32 bytes apiece: event `i`'s previous hash starts at `32 * i` and
        /// its own at `32 * (i + 1)`.
        let hashes: [UInt8]
        /// The head the batch was chained after.
        public let head: AuditChainHead
        /// The head once the batch is appended.
        public let next: AuditChainHead

        /// Chains `events` after `head`.
        public init(_ events: [PreparedEvent], after head: AuditChainHead) {
            precondition(head.hash.count == 32, "a chain head's hash is 32 bytes")
            let size = 32 * (events.count + 1)
            hashes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                let hashes = UnsafeMutableRawBufferPointer(buffer)
                hashes.copyBytes(from: head.hash)
                for index in events.indices {
                    let link = events[index].chain.link(
                        sequence: head.sequence + 1 + Int64(index),
                        after: UnsafeRawBufferPointer(rebasing: hashes[32 * index..<32 * (index + 1)]))
                    link.withUnsafeBytes {
                        UnsafeMutableRawBufferPointer(rebasing: hashes[32 * (index + 1)..<32 * (index + 2)]).copyMemory(
                            from: $0)
                    }
                }
                count = size
            }
            self.events = events
            self.head = head
            next = AuditChainHead(sequence: head.sequence + Int64(events.count), hash: Array(hashes.suffix(32)))
        }

        /// The events with their sequences and hashes.
        var chained: [ChainedAuditEvent] {
            events.indices.map { index in
                ChainedAuditEvent(
                    sequence: head.sequence + 1 + Int64(index), event: events[index].chain.event,
                    previousHash: Array(hashes[32 * index..<32 * (index + 1)]),
                    hash: Array(hashes[32 * (index + 1)..<32 * (index + 2)]))
            }
        }

        /// `ora_audit_append` with the batch, its columns as arrays in PostgreSQL's binary format (which it reads
        /// without parsing). One statement, not COPY: a COPY stays open between client messages, and a backend in
        /// that state holds up database-wide operations (DROP DATABASE … WITH (FORCE)) until the client sends more.
        func statement(lockWait: Duration?) -> PostgresQuery {
            let first = head.sequence + 1
            let (events, hashes) = (self.events, self.hashes)
            func column(_ type: BinaryArray.Element, _ write: @escaping (Int, inout ByteBuffer) -> Void) -> BinaryArray
            {
                BinaryArray(elementType: type, count: events.count, element: write)
            }
            func text(_ value: @escaping (Row) -> String) -> BinaryArray {
                column(.text) { index, buffer in _ = buffer.writeString(value(events[index].row)) }
            }
            func hash(_ offset: Int) -> BinaryArray {
                column(.bytea) { index, buffer in
                    let start = 32 * (index + offset)
                    hashes.withUnsafeBytes {
                        _ = buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[start..<start + 32]))
                    }
                }
            }
            let sequences = column(.int8) { index, buffer in _ = buffer.writeInteger(first + Int64(index)) }
            let ids = column(.uuid) { index, buffer in
                withUnsafeBytes(of: events[index].row.id.uuid) { _ = buffer.writeBytes($0) }
            }
            let versions = column(.int8) { index, buffer in _ = buffer.writeInteger(events[index].row.policyVersion) }
            let nulls = column(.int4) { index, buffer in _ = buffer.writeInteger(events[index].row.nulls) }
            return """
                SELECT ora_audit_append(\(AuditLog.timeoutSetting(lockWait)), \(head.sequence),
                    \(ByteBuffer(bytes: head.hash)), \(next.sequence), \(ByteBuffer(bytes: next.hash)),
                    \(sequences)::bigint[], \(ids)::uuid[], \(text { $0.time })::text[], \(text { $0.event })::text[],
                    \(text { $0.code })::text[], \(text { $0.actorKind })::text[], \(text { $0.actorID })::text[],
                    \(text { $0.actorName })::text[], \(text { $0.machine })::text[], \(text { $0.session })::text[],
                    \(text { $0.source })::text[], \(versions)::bigint[], \(text { $0.policyNames })::text[],
                    \(text { $0.outcome })::text[], \(text { $0.details })::text[], \(nulls)::integer[],
                    \(hash(0))::bytea[], \(hash(1))::bytea[])
                """
        }
    }

    /// A one-dimensional PostgreSQL array without NULLs in binary form, each element written by `element` straight
    /// into the message: a batch's column is sent without making an array of its values first.
    struct BinaryArray: PostgresDynamicTypeEncodable {
        /// An element type and the type of its arrays.
        struct Element {
            let type: PostgresDataType
            let arrayType: PostgresDataType

            static let int4 = Element(type: .int4, arrayType: .int4Array)
            static let int8 = Element(type: .int8, arrayType: .int8Array)
            static let uuid = Element(type: .uuid, arrayType: .uuidArray)
            static let bytea = Element(type: .bytea, arrayType: .byteaArray)
            static let text = Element(type: .text, arrayType: .textArray)
        }

        let elementType: Element
        let count: Int
        /// Writes the bytes of element `index` (its length is added around them).
        let element: (Int, inout ByteBuffer) -> Void

        var psqlType: PostgresDataType { elementType.arrayType }

        var psqlFormat: PostgresFormat { .binary }

        func encode<JSONEncoder: PostgresJSONEncoder>(
            into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>
        ) {
            // Dimensions, whether there are NULLs, the element type; then the one dimension's length and lower bound.
            buffer.writeInteger(count == 0 ? 0 : 1, as: Int32.self)
            buffer.writeInteger(0, as: Int32.self)
            buffer.writeInteger(elementType.type.rawValue)
            guard count > 0 else { return }
            buffer.writeInteger(Int32(count))
            buffer.writeInteger(1, as: Int32.self)
            for index in 0..<count {
                let lengthIndex = buffer.writerIndex
                buffer.writeInteger(0, as: Int32.self)
                element(index, &buffer)
                buffer.setInteger(Int32(buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
            }
        }
    }

    /// Appends `batch` with `ora_audit_append`, in one statement of its own: the rows are inserted before the
    /// chain lock is taken, so this runs while the batch ahead of it (the one that leaves the head where `batch`
    /// was chained) still commits on another connection, and commits right after that one.
    /// - Returns: false when, once the lock was held, the head was not where `batch` was chained (the batch ahead
    ///   failed, or another server appended); nothing was written then.
    /// - Throws: when an event's id is stored already (nothing is written then), or when the database fails.
    /// - Parameter lockWait: how long to wait for the chain lock before the statement fails.
    public static func appendBehind(
        _ batch: ChainedBatch, lockWait: Duration, on client: PostgresClient, logger: Logger
    ) async throws
        -> Bool
    {
        guard !batch.events.isEmpty else { return true }
        let result = try await client.query(batch.statement(lockWait: lockWait), logger: logger)
        for try await appended in result.decode(Bool.self) { return appended }
        return false
    }

    /// A value for `lock_timeout` or `statement_timeout` of `wait`: whole milliseconds, at least one; `0` (no
    /// limit) for nil.
    public static func timeoutSetting(_ wait: Duration?) -> String {
        guard let wait else { return "0" }
        let milliseconds = wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000
        return "\(max(1, milliseconds))ms"
    }

    /// The ids of `events` that are stored already.
    private static func storedIDs(
        of events: [AuditEvent],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Set<UUID> {
        // The time range only narrows the search to the partitions involved; a second of margin on each side keeps
        // the conversion to `Date` from ever excluding a stored event.
        let times = events.map(\.time)
        let earliest = AuditTimestamp(microseconds: times.min()!.microseconds - 1_000_000).date
        let latest = AuditTimestamp(microseconds: times.max()!.microseconds + 1_000_000).date
        let rows = try await connection.query(
            """
            SELECT id FROM audit_events
            WHERE id = ANY(\(events.map(\.id))) AND occurred_at >= \(earliest) AND occurred_at <= \(latest)
            """,
            logger: logger
        )
        var stored: Set<UUID> = []
        for try await id in rows.decode(UUID.self) { stored.insert(id) }
        return stored
    }

    static func chainHead(on connection: PostgresConnection, logger: Logger) async throws -> AuditChainHead {
        let rows = try await connection.query("SELECT sequence, hash FROM audit_chain_head", logger: logger)
        for try await (sequence, hash) in rows.decode((Int64, ByteBuffer).self) {
            return AuditChainHead(sequence: sequence, hash: Array(buffer: hash))
        }
        throw AuditLogError.missingHead
    }

    // MARK: Reading

    /// The ids of `events` that are stored already.
    public func storedIDs(of events: [AuditEvent]) async throws -> Set<UUID> {
        guard !events.isEmpty else { return [] }
        return try await client.withConnection { connection in
            try await Self.storedIDs(of: events, on: connection, logger: logger)
        }
    }

    /// The newest event's sequence and hash.
    public func head() async throws -> AuditChainHead {
        try await client.withConnection { try await Self.chainHead(on: $0, logger: logger) }
    }

    /// Events matching `filter`, newest first, `limit` per page, before the sequence `before`.
    public func search(_ filter: Filter, before: Int64? = nil, limit: Int) async throws -> Page {
        var query = AuditQuery(filter: filter)
        if let before { query.add("sequence < ", before) }
        let rows = try await client.query(query.select(order: "DESC", limit: limit + 1), logger: logger)
        var events: [ChainedAuditEvent] = []
        for try await row in rows {
            events.append(try Self.decode(row))
        }
        guard events.count > limit else { return Page(events: events, next: nil) }
        events.removeLast()
        return Page(events: events, next: events.last?.sequence)
    }

    /// Every event of the remote assistance session `id`, in order.
    public func timeline(ofSession id: UUID) async throws -> [ChainedAuditEvent] {
        let query = AuditQuery(filter: Filter(session: id))
        let rows = try await client.query(query.select(order: "ASC", limit: nil), logger: logger)
        var events: [ChainedAuditEvent] = []
        for try await row in rows { events.append(try Self.decode(row)) }
        return events
    }

    /// Every event matching `filter`, oldest first, read page by page as the consumer asks for more: memory stays
    /// bounded however many events there are, and no query runs longer than one page (a long-running query would
    /// hold back PostgreSQL's clean-up of the whole database).
    public func export(_ filter: Filter, pageSize: Int = 2_000) -> Events {
        Events(log: self, filter: filter, pageSize: pageSize)
    }

    /// Stored events in sequence order, fetched in pages.
    public struct Events: AsyncSequence, Sendable {
        public typealias Element = ChainedAuditEvent
        let log: AuditLog
        let filter: Filter
        let pageSize: Int

        /// Reads the next event, fetching the next page when the current one is used up.
        public struct AsyncIterator: AsyncIteratorProtocol {
            let log: AuditLog
            let filter: Filter
            let pageSize: Int
            var after: Int64
            var page: [ChainedAuditEvent] = []
            var position = 0
            var exhausted = false

            public mutating func next() async throws -> ChainedAuditEvent? {
                if position == page.count {
                    guard !exhausted else { return nil }
                    page = try await log.page(filter, after: after, limit: pageSize)
                    position = 0
                    exhausted = page.count < pageSize
                    guard let last = page.last else { return nil }
                    after = last.sequence
                }
                defer { position += 1 }
                return page[position]
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(log: log, filter: filter, pageSize: pageSize, after: (filter.fromSequence ?? 1) - 1)
        }
    }

    /// Up to `limit` events matching `filter` after the sequence `after`, oldest first.
    func page(_ filter: Filter, after sequence: Int64, limit: Int) async throws -> [ChainedAuditEvent] {
        var query = AuditQuery(filter: filter)
        query.add("sequence > ", sequence)
        let rows = try await client.query(query.select(order: "ASC", limit: limit), logger: logger)
        var events: [ChainedAuditEvent] = []
        for try await row in rows { events.append(try Self.decode(row)) }
        return events
    }

    /// Up to `limit` events after the sequence `after`, oldest first, read on `connection`.
    public static func events(
        after sequence: Int64,
        limit: Int,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [ChainedAuditEvent] {
        var query = AuditQuery(filter: Filter())
        query.add("sequence > ", sequence)
        let rows = try await connection.query(query.select(order: "ASC", limit: limit), logger: logger)
        var events: [ChainedAuditEvent] = []
        for try await row in rows { events.append(try decode(row)) }
        return events
    }

    static let columns = """
        sequence, id, (extract(epoch FROM occurred_at) * 1000000)::bigint, event, code, actor_kind, actor_id,
        actor_name, machine, session_id, source_address, policy_version, policy_names, outcome, details::text,
        previous_hash, hash
        """

    static func decode(_ row: PostgresRow) throws -> ChainedAuditEvent {
        let (
            sequence, id, microseconds, name, code, actorKind, actorID, actorName, machine, session, source,
            policyVersion, policyNames, outcome, details, previousHash, hash
        ) = try row.decode(
            (
                Int64, UUID, Int64, String, String, String, String, String?, String?, UUID?, String?, Int64?,
                [String]?, String, String, ByteBuffer, ByteBuffer
            ).self)
        guard let kind = AuditActor.Kind(rawValue: actorKind) else {
            throw AuditLogError.unreadable(sequence: sequence, id: id, reason: "unknown actor kind \(actorKind)")
        }
        guard let outcomeValue = AuditOutcome(rawValue: outcome) else {
            throw AuditLogError.unreadable(sequence: sequence, id: id, reason: "unknown outcome \(outcome)")
        }
        let detailValues: [String: AuditValue]
        do {
            detailValues = try JSONDecoder().decode([String: AuditValue].self, from: Data(details.utf8))
        } catch {
            throw AuditLogError.unreadable(sequence: sequence, id: id, reason: "its details are not valid")
        }
        guard detailValues.keys.allSatisfy(AuditEvent.isValidDetailName) else {
            throw AuditLogError.unreadable(sequence: sequence, id: id, reason: "a detail name is not valid")
        }
        let policy = policyNames.map { AuditEvent.PolicyReference(version: policyVersion, names: $0) }
        let event = AuditEvent(
            id: id, time: AuditTimestamp(microseconds: microseconds), name: name, code: code,
            actor: AuditActor(kind: kind, id: actorID, name: actorName), machine: machine, session: session,
            source: source, policy: policy, outcome: outcomeValue, details: detailValues)
        return ChainedAuditEvent(
            sequence: sequence, event: event, previousHash: Array(buffer: previousHash), hash: Array(buffer: hash))
    }

    // MARK: Partitions

    /// Creates the partitions for the month of `date` and the next, if missing, so that inserts never wait for one.
    public func preparePartitions(around date: Date = Date()) async throws {
        let next = date.addingTimeInterval(32 * 86_400)
        try await client.query(
            "SELECT ora_audit_prepare_partition(\(date)::date), ora_audit_prepare_partition(\(next)::date)",
            logger: logger)
    }
}

/// Why the audit log could not do something.
public enum AuditLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The chain head row is missing: the schema was tampered with.
    case missingHead
    /// The chain head changed while this writer held the chain lock: someone wrote around the lock.
    case headMoved
    /// A stored row cannot be read as an event.
    case unreadable(sequence: Int64, id: UUID?, reason: String)

    public var description: String {
        switch self {
        case .missingHead: "the audit chain head is missing"
        case .headMoved: "the audit chain head moved while the chain lock was held"
        case .unreadable(let sequence, _, let reason): "audit event \(sequence) cannot be read: \(reason)"
        }
    }
}
