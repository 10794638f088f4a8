/// Why a remote assistance session ended: recorded in `session.ended`, shown to the helper and the novice.
public enum SessionEndReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// The helper ended it.
    case helperEnded = "helper_ended"
    /// The person at the machine ended it.
    case noviceEnded = "novice_ended"
    /// The person at the machine said no to the offer.
    case declined
    /// The person at the machine did not answer the offer in time; never taken as consent.
    case consentTimeout = "consent_timeout"
    /// An administrator ended it.
    case adminTerminated = "admin_terminated"
    /// The active policy no longer allows it.
    case policyRevoked = "policy_revoked"
    /// The helper is no longer in a group that allows it.
    case membershipLost = "membership_lost"
    /// It reached the policy's maximum duration.
    case maxDuration = "max_duration"
    /// The agent's connection was lost.
    case agentDisconnected = "agent_disconnected"
    /// The server holding it stopped.
    case serverRestart = "server_restart"

    /// A sentence for the helper and the novice.
    public var explanation: String {
        switch self {
        case .helperEnded: "the helper ended the session"
        case .noviceEnded: "the person at the machine ended the session"
        case .declined: "the person at the machine declined the offer"
        case .consentTimeout: "the person at the machine did not answer in time, so the offer was declined"
        case .adminTerminated: "an administrator ended the session"
        case .policyRevoked: "the active policy no longer allows this session"
        case .membershipLost: "the helper is no longer in a group that allows this session"
        case .maxDuration: "the session reached the longest time its policy allows"
        case .agentDisconnected: "the connection to the machine was lost"
        case .serverRestart: "the ora server holding the session stopped"
        }
    }
}

/// How control was taken back from the helper, recorded in `control.stopped`.
public enum ControlStopMethod: String, Sendable, Hashable, Codable, CaseIterable {
    /// The novice pressed ESC.
    case escape = "esc"
    /// The novice pressed Ctrl+C.
    case ctrlC = "ctrl_c"
    /// The novice pressed the "Stop control" button.
    case button
    /// The helper gave control back.
    case helper
}
