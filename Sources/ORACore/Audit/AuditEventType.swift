/// What an audit event records, named `resource.action`, with a stable code each. The registry with every
/// event's fields is `Docs/AuditEvents.md`; a released name or code never changes meaning and is never reused.
public enum AuditEventType: String, Sendable, Hashable, CaseIterable, Codable {
    // Operators
    case operatorLogin = "operator.login"
    case operatorLoginFailed = "operator.login_failed"
    case operatorLogout = "operator.logout"
    case operatorSessionRevoked = "operator.session_revoked"
    // Offers and consent
    case offerRequested = "offer.requested"
    case offerDenied = "offer.denied"
    case offerDelivered = "offer.delivered"
    case consentGranted = "consent.granted"
    case consentDeclined = "consent.declined"
    case consentTimeout = "consent.timeout"
    case consentRejected = "consent.rejected"
    // Sessions and control
    case sessionStarted = "session.started"
    case sessionEnded = "session.ended"
    case controlRequested = "control.requested"
    case controlGranted = "control.granted"
    case controlDenied = "control.denied"
    case controlStopped = "control.stopped"
    case inputBlocked = "input.blocked"
    // The screen
    case screenOpened = "screen.opened"
    case screenClosed = "screen.closed"
    case screenRefused = "screen.refused"
    // Chat
    case chatMessage = "chat.message"
    // Invitations
    case invitationCreated = "invitation.created"
    case invitationSent = "invitation.sent"
    case invitationOpened = "invitation.opened"
    case invitationPasswordFailed = "invitation.password_failed"
    case invitationLocked = "invitation.locked"
    case invitationRevoked = "invitation.revoked"
    case invitationExpired = "invitation.expired"
    case invitationTaken = "invitation.taken"
    case invitationClaimed = "invitation.claimed"
    // Policy
    case policyApplied = "policy.applied"
    case policyRolledBack = "policy.rolled_back"
    // Agents
    case agentEnrolled = "agent.enrolled"
    case agentRevoked = "agent.revoked"
    case agentTokenCreated = "agent.token_created"
    case agentTokenRevoked = "agent.token_revoked"
    case agentRekeyed = "agent.rekeyed"
    // The audit log itself
    case auditCheckpoint = "audit.checkpoint"
    case auditPartitionDetached = "audit.partition_detached"

    /// The event's name, such as `operator.login`.
    public var name: String { rawValue }

    /// The stable code, such as `ORA1001`: 1xxx operators, 2xxx offers, consent, sessions and control, 3xxx
    /// policy, 4xxx agents, 5xxx the audit log.
    public var code: String {
        switch self {
        case .operatorLogin: "ORA1001"
        case .operatorLoginFailed: "ORA1002"
        case .operatorLogout: "ORA1003"
        case .operatorSessionRevoked: "ORA1004"
        case .offerRequested: "ORA2001"
        case .offerDenied: "ORA2002"
        case .offerDelivered: "ORA2003"
        case .consentGranted: "ORA2101"
        case .consentDeclined: "ORA2102"
        case .consentTimeout: "ORA2103"
        case .consentRejected: "ORA2104"
        case .sessionStarted: "ORA2201"
        case .sessionEnded: "ORA2202"
        case .controlRequested: "ORA2301"
        case .controlGranted: "ORA2302"
        case .controlDenied: "ORA2303"
        case .controlStopped: "ORA2304"
        case .inputBlocked: "ORA2401"
        case .screenOpened: "ORA2501"
        case .screenClosed: "ORA2502"
        case .screenRefused: "ORA2503"
        case .chatMessage: "ORA2601"
        case .invitationCreated: "ORA2701"
        case .invitationSent: "ORA2702"
        case .invitationOpened: "ORA2703"
        case .invitationPasswordFailed: "ORA2704"
        case .invitationLocked: "ORA2705"
        case .invitationRevoked: "ORA2706"
        case .invitationExpired: "ORA2707"
        case .invitationTaken: "ORA2708"
        case .invitationClaimed: "ORA2709"
        case .policyApplied: "ORA3001"
        case .policyRolledBack: "ORA3002"
        case .agentEnrolled: "ORA4001"
        case .agentRevoked: "ORA4002"
        case .agentTokenCreated: "ORA4003"
        case .agentRekeyed: "ORA4004"
        case .agentTokenRevoked: "ORA4005"
        case .auditCheckpoint: "ORA5001"
        case .auditPartitionDetached: "ORA5002"
        }
    }

    /// The type with `code`, if any.
    public init?(code: String) {
        guard let type = Self.allCases.first(where: { $0.code == code }) else { return nil }
        self = type
    }
}
