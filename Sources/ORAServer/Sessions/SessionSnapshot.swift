public import Foundation
public import ORACore

/// A remote assistance session as the API shows it.
public struct SessionSnapshot: Sendable, Codable, Hashable {
    /// The session's id.
    public var id: UUID
    /// The machine, lower case.
    public var machine: String
    /// The helper's account name.
    public var helper: String
    /// The helper's DN.
    public var helperDN: String
    /// The most the session may reach.
    public var mode: AccessMode
    /// `offered`, `awaiting_consent`, `viewing`, `control_requested`, `controlling` or `ended`.
    public var state: String
    /// Why it ended, once it has.
    public var endReason: SessionEndReason?
    /// The ticket, if any.
    public var ticket: String?
    /// The helper's reason, if any.
    public var reason: String?
    /// The policies that allowed it.
    public var policies: [String]
    /// The policy version that allowed it.
    public var policyVersion: Int64
    /// When it was offered.
    public var offeredAt: Date
    /// When the novice accepted.
    public var startedAt: Date?
    /// When the current state runs out by itself.
    public var deadline: Date?
    /// How many control requests the helper made.
    public var controlRequests: Int
    /// What the person's agent last said of them (the session window on screen, typing); `nil` until it said.
    public var person: PersonPresence?
    /// How control was last taken back (`esc`, `ctrl_c`, `button` at the machine, or `helper`), once it was.
    public var controlStoppedBy: ControlStopMethod?
    /// When control was last taken back.
    public var controlStoppedAt: Date?
    /// How many chat lines were delivered.
    public var chatMessages: Int

    /// Creates a snapshot.
    public init(
        id: UUID, machine: String, helper: String, helperDN: String, mode: AccessMode, state: String,
        endReason: SessionEndReason?, ticket: String?, reason: String?, policies: [String], policyVersion: Int64,
        offeredAt: Date, startedAt: Date?, deadline: Date?, controlRequests: Int, person: PersonPresence? = nil,
        controlStoppedBy: ControlStopMethod? = nil, controlStoppedAt: Date? = nil, chatMessages: Int = 0
    ) {
        self.id = id
        self.machine = machine
        self.helper = helper
        self.helperDN = helperDN
        self.mode = mode
        self.state = state
        self.endReason = endReason
        self.ticket = ticket
        self.reason = reason
        self.policies = policies
        self.policyVersion = policyVersion
        self.offeredAt = offeredAt
        self.startedAt = startedAt
        self.deadline = deadline
        self.controlRequests = controlRequests
        self.person = person
        self.controlStoppedBy = controlStoppedBy
        self.controlStoppedAt = controlStoppedAt
        self.chatMessages = chatMessages
    }

    enum CodingKeys: String, CodingKey {
        case id, machine, helper, mode, state, ticket, reason, policies, deadline
        case helperDN = "helper_dn"
        case endReason = "end_reason"
        case policyVersion = "policy_version"
        case offeredAt = "offered_at"
        case startedAt = "started_at"
        case controlRequests = "control_requests"
        case person
        case controlStoppedBy = "control_stopped_by"
        case controlStoppedAt = "control_stopped_at"
        case chatMessages = "chat_messages"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(UUID.self, forKey: .id),
            machine: try container.decode(String.self, forKey: .machine),
            helper: try container.decode(String.self, forKey: .helper),
            helperDN: try container.decode(String.self, forKey: .helperDN),
            mode: try container.decode(AccessMode.self, forKey: .mode),
            state: try container.decode(String.self, forKey: .state),
            endReason: try container.decodeIfPresent(SessionEndReason.self, forKey: .endReason),
            ticket: try container.decodeIfPresent(String.self, forKey: .ticket),
            reason: try container.decodeIfPresent(String.self, forKey: .reason),
            policies: try container.decode([String].self, forKey: .policies),
            policyVersion: try container.decode(Int64.self, forKey: .policyVersion),
            offeredAt: try container.decode(Date.self, forKey: .offeredAt),
            startedAt: try container.decodeIfPresent(Date.self, forKey: .startedAt),
            deadline: try container.decodeIfPresent(Date.self, forKey: .deadline),
            controlRequests: try container.decode(Int.self, forKey: .controlRequests),
            person: try container.decodeIfPresent(PersonPresence.self, forKey: .person),
            controlStoppedBy: try container.decodeIfPresent(ControlStopMethod.self, forKey: .controlStoppedBy),
            controlStoppedAt: try container.decodeIfPresent(Date.self, forKey: .controlStoppedAt),
            // Copies written by a server of the release before chat have none.
            chatMessages: try container.decodeIfPresent(Int.self, forKey: .chatMessages) ?? 0)
    }

    /// Whether the session has ended.
    public var hasEnded: Bool { endReason != nil }
}
