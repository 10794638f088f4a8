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
        time: AuditTimestamp = .now,
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
