public import Crypto
import Foundation
import Logging
public import ORACore
import PostgresNIO

extension AuditLog {
    /// The result of re-verifying the chain.
    public struct VerificationReport: Sendable, Codable, Equatable {
        /// Whether everything checked is intact.
        public var intact: Bool
        /// How many events were re-hashed and found good.
        public var verified: Int64
        /// The first and last sequence checked.
        public var first: Int64?
        /// The last sequence checked.
        public var last: Int64?
        /// The chain head the database records.
        public var head: Int64
        /// How many signed checkpoints were compared with the chain.
        public var checkpoints: Int
        /// The first problem, when the chain is not intact.
        public var problem: AuditChainProblem?

        enum CodingKeys: String, CodingKey {
            case intact, verified, first, last, head, checkpoints, problem
        }
    }

    /// Re-computes every hash of the chain (or of the events `from`…`through`) from the stored fields, checks the
    /// links, the sequence, the recorded head and the signed checkpoints, and reports the first break.
    /// - Parameter trustedKeys: base64 Ed25519 public keys whose checkpoints are trusted; a checkpoint signed by
    ///   any other key is a problem. Empty: signatures are checked against the checkpoints' own keys only.
    public func verify(
        from: Int64? = nil,
        through: Int64? = nil,
        trustedKeys: Set<String> = []
    ) async throws -> VerificationReport {
        try await client.withConnection { connection in
            // One snapshot for everything read, so that events appended meanwhile do not look like a mismatch.
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            do {
                let report = try await verify(
                    from: from, through: through, trustedKeys: trustedKeys, on: connection)
                try await connection.query("ROLLBACK", logger: logger)
                return report
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    private func verify(
        from: Int64?,
        through: Int64?,
        trustedKeys: Set<String>,
        on connection: PostgresConnection
    ) async throws -> VerificationReport {
        let head = try await Self.chainHead(on: connection, logger: logger)
        let checkpoints = try await Self.checkpoints(on: connection, logger: logger)
        var verifier = AuditChainVerifier(
            anchor: try await anchor(from: from, on: connection))
        var report = VerificationReport(
            intact: true, verified: 0, first: nil, last: nil, head: head.sequence, checkpoints: 0, problem: nil)

        for checkpoint in checkpoints {
            if !checkpoint.hasValidSignature {
                verifier.report(
                    AuditChainProblem(
                        kind: .checkpointMismatch, sequence: checkpoint.sequence, eventID: nil,
                        detail: "the checkpoint's signature is not valid"))
            } else if !trustedKeys.isEmpty, !trustedKeys.contains(checkpoint.publicKey) {
                verifier.report(
                    AuditChainProblem(
                        kind: .checkpointMismatch, sequence: checkpoint.sequence, eventID: nil,
                        detail: "the checkpoint is signed by a key that is not trusted (\(checkpoint.publicKey))"))
            }
        }
        let bySequence = Dictionary(grouping: checkpoints, by: \.sequence)

        var query = AuditQuery(filter: Filter(fromSequence: from))
        if let through { query.add("sequence <= ", through) }
        let rows = try await connection.query(query.select(order: "ASC", limit: nil), logger: logger)
        for try await row in rows {
            guard verifier.problem == nil else { break }
            let stored: ChainedAuditEvent
            do {
                stored = try Self.decode(row)
            } catch let AuditLogError.unreadable(sequence, id, reason) {
                verifier.report(AuditChainProblem(kind: .unreadable, sequence: sequence, eventID: id, detail: reason))
                break
            }
            if report.first == nil { report.first = stored.sequence }
            guard verifier.check(stored) else { break }
            report.last = stored.sequence
            for checkpoint in bySequence[stored.sequence] ?? [] {
                report.checkpoints += 1
                if checkpoint.hash != Hex.encode(stored.hash) {
                    verifier.report(
                        AuditChainProblem(
                            kind: .checkpointMismatch, sequence: stored.sequence, eventID: stored.event.id,
                            detail: "the signed checkpoint of \(checkpoint.time) has a different hash for this event"
                        ))
                }
            }
        }

        if through == nil, verifier.problem == nil {
            let last = verifier.head?.sequence ?? 0
            if head.sequence > last {
                verifier.report(
                    AuditChainProblem(
                        kind: .truncated, sequence: last + 1, eventID: nil,
                        detail:
                            "the chain's recorded head is event \(head.sequence), but the last stored event is \(last)")
                )
            } else if let newest = checkpoints.map(\.sequence).max(), newest > last {
                verifier.report(
                    AuditChainProblem(
                        kind: .truncated, sequence: last + 1, eventID: nil,
                        detail: "a signed checkpoint covers event \(newest), but the last stored event is \(last)"))
            }
        }
        report.verified = verifier.verified
        report.problem = verifier.problem
        report.intact = verifier.problem == nil
        return report
    }

    /// The link the first checked event must follow.
    private func anchor(from: Int64?, on connection: PostgresConnection) async throws -> AuditChainHead? {
        if let from, from > 1 {
            // A range is checked from the stored event before it.
            let rows = try await connection.query(
                "SELECT hash FROM audit_events WHERE sequence = \(from - 1)", logger: logger)
            for try await hash in rows.decode(ByteBuffer.self) {
                return AuditChainHead(sequence: from - 1, hash: Array(buffer: hash))
            }
            return nil
        }
        let firstRows = try await connection.query(
            "SELECT sequence, previous_hash FROM audit_events ORDER BY sequence LIMIT 1", logger: logger)
        var first: (Int64, [UInt8])?
        for try await (sequence, previous) in firstRows.decode((Int64, ByteBuffer).self) {
            first = (sequence, Array(buffer: previous))
        }
        guard let (sequence, previous) = first, sequence > 1 else { return .empty }
        // Older events were detached for retention; the detaching event recorded where they ended.
        let rows = try await connection.query(
            """
            SELECT (details->>'last_sequence')::bigint, details->>'last_hash' FROM audit_events
            WHERE event = \(AuditEventType.auditPartitionDetached.name)
            """,
            logger: logger)
        for try await (lastSequence, lastHash) in rows.decode((Int64?, String?).self)
        where lastSequence == sequence - 1 && lastHash == Hex.encode(previous) {
            return AuditChainHead(sequence: sequence - 1, hash: previous)
        }
        return .empty
    }

    // MARK: Checkpoints

    /// Signs the chain's head with `key`, stores the checkpoint and records it in the chain, in one transaction.
    /// - Parameter actor: who asked for it.
    public func checkpoint(
        signingWith key: Curve25519.Signing.PrivateKey,
        actor: AuditActor,
        source: String? = nil
    ) async throws -> AuditCheckpoint {
        let eventID = UUID()
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.chainLockKey))", logger: logger)
            let head = try await Self.chainHead(on: connection, logger: logger)
            let time = AuditTimestamp(Date())
            let checkpoint = try AuditCheckpoint(signing: head, at: time, with: key)
            try await connection.query(
                """
                INSERT INTO audit_checkpoints (sequence, hash, signed_time, public_key, signature)
                VALUES (\(checkpoint.sequence), \(checkpoint.hash), \(checkpoint.time), \(checkpoint.publicKey),
                    \(checkpoint.signature))
                ON CONFLICT DO NOTHING
                """,
                logger: logger)
            let event = AuditEvent(
                .auditCheckpoint, id: eventID, time: time, actor: actor, source: source, outcome: .success,
                details: [
                    "sequence": .integer(checkpoint.sequence), "hash": .string(checkpoint.hash),
                    "public_key": .string(checkpoint.publicKey), "signature": .string(checkpoint.signature),
                ])
            try await Self.append([event], on: connection, logger: logger)
            return checkpoint
        }
    }

    /// Every stored checkpoint, oldest first.
    public func checkpoints() async throws -> [AuditCheckpoint] {
        try await client.withConnection { try await Self.checkpoints(on: $0, logger: logger) }
    }

    private static func checkpoints(
        on connection: PostgresConnection, logger: Logger
    ) async throws
        -> [AuditCheckpoint]
    {
        let rows = try await connection.query(
            "SELECT sequence, hash, signed_time, public_key, signature FROM audit_checkpoints ORDER BY sequence",
            logger: logger)
        var result: [AuditCheckpoint] = []
        for try await (sequence, hash, time, key, signature) in rows.decode(
            (Int64, String, String, String, String).self)
        {
            result.append(
                AuditCheckpoint(sequence: sequence, hash: hash, time: time, publicKey: key, signature: signature))
        }
        return result
    }
}
