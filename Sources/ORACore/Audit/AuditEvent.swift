public import Foundation

/// One entry of the audit log: who did what to which machine, when, from where, under which policy, and how it
/// turned out. Text from outside is kept as data in its own field, never written into a sentence.
public struct AuditEvent: Sendable, Hashable {
    /// Which policy version and policies decided the action.
    public struct PolicyReference: Sendable, Hashable, Codable {
        /// The active version, or `nil` when none was.
        public var version: Int64?
        /// The names of the deciding policies.
        public var names: [String]

        /// Creates a reference.
        public init(version: Int64?, names: [String] = []) {
            self.version = version
            self.names = names.map(AuditText.storable)
        }
    }

    /// Unique, assigned when the event is created and kept through every write attempt, so that a retry is
    /// recognised.
    public var id: UUID
    /// When it happened.
    public var time: AuditTimestamp
    /// The event's name, such as `offer.requested`.
    public var name: String
    /// The event's stable code, such as `ORA2001`.
    public var code: String
    /// Who did it.
    public var actor: AuditActor
    /// The machine it concerns, by name.
    public var machine: String?
    /// The remote assistance session it belongs to.
    public var session: UUID?
    /// The network address the request came from.
    public var source: String?
    /// The policy that decided it.
    public var policy: PolicyReference?
    /// How it turned out.
    public var outcome: AuditOutcome
    /// Everything else, structured; names are lowercase ASCII letters, digits and underscores.
    public var details: [String: AuditValue]

    /// Creates an event with a new id.
    public init(
        _ type: AuditEventType,
        id: UUID = .random(),
        time: AuditTimestamp,
        actor: AuditActor,
        machine: String? = nil,
        session: UUID? = nil,
        source: String? = nil,
        policy: PolicyReference? = nil,
        outcome: AuditOutcome,
        details: [String: AuditValue] = [:]
    ) {
        self.init(
            id: id, time: time, name: type.name, code: type.code, actor: actor, machine: machine, session: session,
            source: source, policy: policy, outcome: outcome, details: details)
    }

    /// Creates an event of any name, as read back from storage (possibly written by a newer server).
    public init(
        id: UUID,
        time: AuditTimestamp,
        name: String,
        code: String,
        actor: AuditActor,
        machine: String?,
        session: UUID?,
        source: String?,
        policy: PolicyReference?,
        outcome: AuditOutcome,
        details: [String: AuditValue]
    ) {
        precondition(
            details.keys.allSatisfy(Self.isValidDetailName), "audit detail names are lowercase ASCII and underscores")
        self.id = id
        self.time = time
        self.name = name
        self.code = code
        self.actor = actor
        self.machine = machine.map(AuditText.storable)
        self.session = session
        self.source = source.map(AuditText.storable)
        self.policy = policy
        self.outcome = outcome
        self.details = details.mapValues(\.storable)
    }

    /// The type, when this build knows the name.
    public var type: AuditEventType? { AuditEventType(rawValue: name) }

    /// Whether `name` may name a detail: one or more of `a`–`z`, `0`–`9` and `_`.
    public static func isValidDetailName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5f }
    }
}

extension AuditEvent: Codable {
    enum CodingKeys: String, CodingKey {
        case id, time, name, code, actor, machine, session, source, policy, outcome, details
    }

    /// Decodes an event as `encode(to:)` wrote it (the time as microseconds since the Unix epoch).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let details = try container.decode([String: AuditValue].self, forKey: .details)
        guard details.keys.allSatisfy(Self.isValidDetailName) else {
            throw DecodingError.dataCorruptedError(
                forKey: .details, in: container, debugDescription: "a detail name is not lowercase ASCII")
        }
        self.init(
            id: try container.decode(UUID.self, forKey: .id),
            time: AuditTimestamp(microseconds: try container.decode(Int64.self, forKey: .time)),
            name: try container.decode(String.self, forKey: .name),
            code: try container.decode(String.self, forKey: .code),
            actor: try container.decode(AuditActor.self, forKey: .actor),
            machine: try container.decodeIfPresent(String.self, forKey: .machine),
            session: try container.decodeIfPresent(UUID.self, forKey: .session),
            source: try container.decodeIfPresent(String.self, forKey: .source),
            policy: try container.decodeIfPresent(PolicyReference.self, forKey: .policy),
            outcome: try container.decode(AuditOutcome.self, forKey: .outcome),
            details: details)
    }

    /// Encodes every field, so the event decodes to an equal one (kept in a server's journal of events still to
    /// be stored).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(time.microseconds, forKey: .time)
        try container.encode(name, forKey: .name)
        try container.encode(code, forKey: .code)
        try container.encode(actor, forKey: .actor)
        try container.encodeIfPresent(machine, forKey: .machine)
        try container.encodeIfPresent(session, forKey: .session)
        try container.encodeIfPresent(source, forKey: .source)
        try container.encodeIfPresent(policy, forKey: .policy)
        try container.encode(outcome, forKey: .outcome)
        try container.encode(details, forKey: .details)
    }
}
