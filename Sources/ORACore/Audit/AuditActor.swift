/// Who did what an audit event records.
public struct AuditActor: Sendable, Hashable, Codable {
    /// The kind of actor.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// A person, identified by their directory DN.
        case `operator`
        /// A machine's agent, identified by the machine's name.
        case machine
        /// An ora-server itself (a timer, a policy re-check), identified by its instance.
        case system
    }

    /// The kind.
    public var kind: Kind
    /// The operator's DN, the machine's name, or the server instance.
    public var id: String
    /// The operator's account name, as they typed it; `nil` for machines and servers.
    public var name: String?

    /// Creates an actor.
    public init(kind: Kind, id: String, name: String? = nil) {
        self.kind = kind
        self.id = AuditText.storable(id)
        self.name = name.map(AuditText.storable)
    }

    /// An operator.
    public static func `operator`(dn: String, account: String?) -> AuditActor {
        AuditActor(kind: .operator, id: dn, name: account)
    }

    /// A machine's agent.
    public static func machine(_ name: String) -> AuditActor { AuditActor(kind: .machine, id: name) }

    /// An ora-server.
    public static func system(_ instance: String) -> AuditActor { AuditActor(kind: .system, id: instance) }
}

/// How an audited action turned out.
public enum AuditOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    /// It happened.
    case success
    /// It was refused by a rule: policy, role, consent.
    case denied
    /// It could not happen: wrong credentials, an unavailable service, a timeout.
    case failure
}
