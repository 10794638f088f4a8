public import Crypto
public import Foundation

/// An event in its place in the chain: `hash = SHA-256(previousHash ‖ canonical encoding of the event at
/// sequence)`. The first event's previous hash is 32 zero bytes.
public struct ChainedAuditEvent: Sendable, Hashable {
    /// The position in the chain, from 1, without gaps.
    public var sequence: Int64
    /// The event.
    public var event: AuditEvent
    /// The hash of the event before, or 32 zero bytes for the first.
    public var previousHash: [UInt8]
    /// This event's link.
    public var hash: [UInt8]

    /// Creates a chained event as stored.
    public init(sequence: Int64, event: AuditEvent, previousHash: [UInt8], hash: [UInt8]) {
        self.sequence = sequence
        self.event = event
        self.previousHash = previousHash
        self.hash = hash
    }
}

/// The head of the hash chain: the last event's sequence and hash.
public struct AuditChainHead: Sendable, Hashable, Codable {
    /// The previous hash of the very first event.
    public static let genesisHash = [UInt8](repeating: 0, count: 32)
    /// An empty chain.
    public static let empty = AuditChainHead(sequence: 0, hash: genesisHash)

    /// The last event's sequence, 0 when there is none.
    public var sequence: Int64
    /// The last event's hash.
    public var hash: [UInt8]

    /// Creates a head.
    public init(sequence: Int64, hash: [UInt8]) {
        self.sequence = sequence
        self.hash = hash
    }

    /// The hash of `event` at `sequence` after `previousHash`.
    public static func link(_ event: AuditEvent, sequence: Int64, after previousHash: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previousHash)
        hasher.update(data: AuditCanonicalEncoding.encode(event, sequence: sequence))
        return Array(hasher.finalize())
    }

    /// Appends `events` after this head, in order, and moves the head to the last one.
    /// - Returns: the events with their sequences and hashes.
    public mutating func append(_ events: [AuditEvent]) -> [ChainedAuditEvent] {
        append(events.map(PreparedAuditEvent.init))
    }

    /// Appends events encoded ahead, in order, and moves the head to the last one: only the hashing is left.
    /// - Returns: the events with their sequences and hashes.
    public mutating func append(_ events: [PreparedAuditEvent]) -> [ChainedAuditEvent] {
        events.map { prepared in
            let sequence = self.sequence + 1
            let hash = hash.withUnsafeBytes { Array(prepared.link(sequence: sequence, after: $0)) }
            defer { self = AuditChainHead(sequence: sequence, hash: hash) }
            return ChainedAuditEvent(sequence: sequence, event: prepared.event, previousHash: self.hash, hash: hash)
        }
    }
}

/// An event with its canonical encoding done ahead of time, split around the sequence number that only the
/// chain's head decides: what is left when the head is known is one SHA-256 per event.
public struct PreparedAuditEvent: Sendable, Hashable {
    /// The event.
    public let event: AuditEvent
    let before: [UInt8]
    let after: [UInt8]
    /// The event's details in canonical form, as text.
    public let detailsText: String
    /// The event's time in the canonical encoding's form.
    public let timeText: String

    /// Encodes `event`.
    public init(_ event: AuditEvent) {
        self.event = event
        let parts = AuditCanonicalEncoding.parts(event)
        (before, after) = (parts.before, parts.after)
        detailsText = String(decoding: parts.details, as: UTF8.self)
        timeText = String(decoding: parts.time, as: UTF8.self)
    }

    /// The event's link at `sequence` after the 32 bytes of `previousHash`: SHA-256(previous hash ‖ canonical
    /// encoding). Nothing is copied or allocated for it.
    public func link(sequence: Int64, after previousHash: UnsafeRawBufferPointer) -> SHA256Digest {
        var hasher = SHA256()
        hasher.update(bufferPointer: previousHash)
        hasher.update(data: before)
        // The sequence in decimal, written backwards from the end of a buffer long enough for any Int64.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var value = sequence.magnitude
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            } while value > 0
            if sequence < 0 {
                // Never a stored sequence (they start at 1), but encoded as `String(sequence)` would be.
                hasher.update(data: [UInt8(ascii: "-")])
            }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: digits.baseAddress! + start, count: 20 - start))
        }
        hasher.update(data: after)
        return hasher.finalize()
    }
}

/// What is wrong at one place of the chain.
public struct AuditChainProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The kind of break.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The event's contents do not give its stored hash: it was edited.
        case hashMismatch = "hash_mismatch"
        /// The event's previous hash is not the hash of the event before it: an event was removed, inserted or
        /// moved.
        case brokenLink = "broken_link"
        /// A sequence number is missing: an event was removed.
        case missingEvents = "missing_events"
        /// The stored row cannot be read as an event (a field was set to something ora never writes).
        case unreadable
        /// The chain ends before its recorded head or a signed checkpoint: events at the end were removed.
        case truncated
        /// A checkpoint does not match the chain, or its signature is not valid.
        case checkpointMismatch = "checkpoint_mismatch"
        /// A recorded answer of the person at a machine is not signed by that machine's enrolled device key: the
        /// server that wrote it made it up or changed it.
        case consentSignature = "consent_signature"
    }

    /// The kind of break.
    public var kind: Kind
    /// The sequence of the first bad event (or where the missing ones should be).
    public var sequence: Int64
    /// The id of that event, when there is one.
    public var eventID: UUID?
    /// What was found, for the security team.
    public var detail: String

    /// Creates a problem.
    public init(kind: Kind, sequence: Int64, eventID: UUID?, detail: String) {
        self.kind = kind
        self.sequence = sequence
        self.eventID = eventID
        self.detail = detail
    }

    public var description: String {
        "event \(sequence)\(eventID.map { " (\($0.uuidString.lowercased()))" } ?? ""): \(detail)"
    }

    enum CodingKeys: String, CodingKey {
        case kind, sequence, detail
        case eventID = "event_id"
    }
}

/// Re-verifies a stretch of the chain, event by event in sequence order, and stops at the first break.
public struct AuditChainVerifier: Sendable {
    /// The first problem found, if any.
    public private(set) var problem: AuditChainProblem?
    /// How many events were checked and found good.
    public private(set) var verified: Int64 = 0
    /// The last good link.
    public private(set) var head: AuditChainHead?
    /// Each machine's device key, from the enrollments seen so far.
    private var enrolledKeys: [String: String] = [:]

    /// Starts a verification.
    /// - Parameter anchor: the link the first event must follow: the genesis for a whole chain, the head of the
    ///   events before a range, or `nil` to trust the first event's stored previous hash (the start of what is
    ///   still kept after old partitions were detached).
    public init(anchor: AuditChainHead?) {
        head = anchor
    }

    /// Checks the next event. Returns `false` once a problem was found (further events are ignored).
    @discardableResult
    public mutating func check(_ stored: ChainedAuditEvent) -> Bool {
        guard problem == nil else { return false }
        if let head {
            if stored.sequence != head.sequence + 1 {
                let found = stored.sequence
                return fail(
                    stored.sequence < head.sequence + 1 ? .brokenLink : .missingEvents, at: head.sequence + 1,
                    id: stored.sequence == head.sequence + 1 ? stored.event.id : nil,
                    detail: found <= head.sequence
                        ? "expected event \(head.sequence + 1), found event \(found) again or out of order"
                        : "events \(head.sequence + 1)–\(found - 1) are missing; the next stored event is \(found)")
            }
            if stored.previousHash != head.hash {
                return fail(
                    .brokenLink, at: stored.sequence, id: stored.event.id,
                    detail: "its previous hash is not the hash of event \(head.sequence)")
            }
        }
        let expected = AuditChainHead.link(stored.event, sequence: stored.sequence, after: stored.previousHash)
        guard expected == stored.hash else {
            return fail(
                .hashMismatch, at: stored.sequence, id: stored.event.id,
                detail: "its contents do not match its hash: it was changed after it was written")
        }
        if let problem = Self.consentProblem(in: stored.event, enrolledKeys: &enrolledKeys) {
            return fail(.consentSignature, at: stored.sequence, id: stored.event.id, detail: problem)
        }
        head = AuditChainHead(sequence: stored.sequence, hash: stored.hash)
        verified += 1
        return true
    }

    /// What is wrong with the signed answer an event records, if anything: its signature must be the key stored
    /// with it, and that key the machine's enrolled one (when the enrollment is among the events checked).
    static func consentProblem(in event: AuditEvent, enrolledKeys: inout [String: String]) -> String? {
        if event.name == AuditEventType.agentEnrolled.name, let machine = event.machine,
            let key = event.details["public_key"]?.stringValue
        {
            enrolledKeys[machine] = key
            return nil
        }
        guard let value = event.details["receipt"] else { return nil }
        guard let receipt = ConsentReceipt(auditValue: value), let keyText = event.details["public_key"]?.stringValue
        else { return "the recorded answer cannot be read as a signed receipt" }
        guard let key = try? DevicePublicKey.parse(keyText), receipt.isSigned(by: key) else {
            return "the recorded answer is not signed by the key recorded with it"
        }
        if let machine = event.machine, let enrolled = enrolledKeys[machine], enrolled != keyText {
            return "the recorded answer is signed by a key that is not \(machine)'s enrolled device key"
        }
        if receipt.machine != event.machine || receipt.session != event.session {
            return "the recorded answer belongs to another machine or session"
        }
        let granting: Set<String> = [
            AuditEventType.consentGranted.name, AuditEventType.sessionStarted.name, AuditEventType.controlGranted.name,
        ]
        if granting.contains(event.name) != (receipt.answer == .granted) {
            return "the event says \(event.name), but the signed answer is \(receipt.answer.rawValue)"
        }
        return nil
    }

    /// Records a problem found outside the chain walk (an unreadable row, a truncated end).
    public mutating func report(_ problem: AuditChainProblem) {
        if self.problem == nil { self.problem = problem }
    }

    private mutating func fail(_ kind: AuditChainProblem.Kind, at sequence: Int64, id: UUID?, detail: String) -> Bool {
        problem = AuditChainProblem(kind: kind, sequence: sequence, eventID: id, detail: detail)
        return false
    }
}
