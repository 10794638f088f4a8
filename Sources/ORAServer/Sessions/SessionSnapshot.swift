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

    enum CodingKeys: String, CodingKey {
        case id, machine, helper, mode, state, ticket, reason, policies, deadline
        case helperDN = "helper_dn"
        case endReason = "end_reason"
        case policyVersion = "policy_version"
        case offeredAt = "offered_at"
        case startedAt = "started_at"
        case controlRequests = "control_requests"
    }

    /// Whether the session has ended.
    public var hasEnded: Bool { endReason != nil }
}
