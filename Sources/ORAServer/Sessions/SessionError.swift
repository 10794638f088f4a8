public import Foundation
public import ORACore
public import ORADirectory

/// Why an offer or an action on a session was refused, on this replica or on the one that runs the session.
public enum SessionError: ServiceError, Equatable {
    /// A value in the request is out of range or cannot be shown to the person at the machine; says which.
    case invalidRequest(String)
    /// The machine could not be looked up among the enrolled ones (unknown, or the database is unavailable).
    case machine(AgentError)
    /// The machine is revoked.
    case machineRevoked(String)
    /// The machine is enrolled but no longer a computer object in the directory.
    case notInDirectory(String)
    /// The directory could not say what the machine is.
    case directory(DirectoryError)
    /// Policy does not allow this operator this access to this machine; the explanation says which policies.
    case deniedByPolicy(explanation: String)
    /// The machine is in a session already.
    case machineBusy(String)
    /// The machine was offered help `recent` times in the last minute, the most allowed.
    case tooManyOffers(machine: String, recent: Int, retryAfter: Duration)
    /// The machine's agent is not connected.
    case machineOffline(String)
    /// Only the session's helper may ask for control.
    case onlyTheHelperMayRequestControl
    /// Only the session's helper or an administrator may end it.
    case onlyTheHelperOrAnAdministratorMayEnd
    /// Only the session's helper may chat with the person at the machine.
    case onlyTheHelperMayChat
    /// Chat is open from the person's acceptance to the session's end; the state says where the session is.
    case chatNotOpen(state: String)
    /// The chat line breaks a rule, and which.
    case invalidChatLine(ChatLineError)
    /// This side of the session wrote as many chat lines as it may lately.
    case tooManyChatLines(retryAfter: Duration)
    /// No session with this id is visible to the person asking.
    case unknownSession(UUID)
    /// The session has ended.
    case sessionEnded
    /// The session's state does not allow this step now.
    case invalidState(SessionTransitionError)
    /// Another step of the session is being recorded, or came first while this one was.
    case sessionChanging
    /// The audit log could not record the action, so it was not performed.
    case auditUnavailable
    /// The database could not be reached (the cause is in the server's log).
    case databaseUnavailable
    /// The replica holding the machine's agent, or running the session, did not answer in time.
    case replicaDidNotAnswer
    /// The replica asked is still starting.
    case replicaStarting
    /// The request is too large to pass on to another replica.
    case tooLargeToPassOn
    /// The session's state as its replica stored it cannot be read.
    case unreadableStoredSession
    /// The request cannot be encoded to pass on to another replica.
    case requestNotEncodable
    /// The other replica's answer named no session.
    case noSessionInAnswer
    /// The replica running the session refused, for this reason.
    case refusedElsewhere(ReplicaRefusal)
    /// The invitation cannot be used, as the server or the machine found.
    case invitation(InvitationError)
    /// No invitation is being opened for this session by this operator (or the machine's challenge expired).
    case noInvitationPending(UUID)
    /// The machine did not answer about its invitation in time.
    case machineDidNotAnswer(String)
    /// No invitation with this id is in the helpdesk's queue (or this helper may not answer it).
    case notInQueue(UUID)
    /// Another helper took the invitation from the queue first: who, and when.
    case invitationTaken(by: String, at: Date)
    /// The invitation left the queue untaken: the person revoked it, or it expired.
    case invitationWithdrawn(reason: String)
    /// The invitation was made for another channel than the one it was sent through (the machine signed which).
    case wrongChannel(made: Invitation.Channel, used: Invitation.Channel)
    /// The machine has this many requests open in the helpdesk's queue, the most it may.
    case tooManyQueued(machine: String, open: Int)
    /// Policy lets nobody answer the invitation as it was made (the sentence says why).
    case invitationNotAnswerable(String)
    /// The server sends no mail: its configuration has no `mail` section.
    case mailNotConfigured
    /// The address is neither a directory user's nor in a domain that policy allows for the machine.
    case recipientNotAllowed(String, domains: [String])
    /// The mail server did not take the message (the sentence says why).
    case mailNotSent(String)

    public var code: String {
        switch self {
        case .invalidRequest: "invalid_request"
        case .machine(let error): error.code
        case .machineRevoked: "machine_revoked"
        case .notInDirectory: "not_in_directory"
        case .directory(let error): error.code
        case .deniedByPolicy: "denied_by_policy"
        case .machineBusy: "machine_busy"
        case .tooManyOffers: "too_many_offers"
        case .machineOffline: "machine_offline"
        case .onlyTheHelperMayRequestControl, .onlyTheHelperOrAnAdministratorMayEnd, .onlyTheHelperMayChat:
            "forbidden"
        case .chatNotOpen: "chat_not_open"
        case .invalidChatLine: "invalid_chat_message"
        case .tooManyChatLines: "too_many_chat_messages"
        case .unknownSession: "unknown_session"
        case .sessionEnded: "session_ended"
        case .invalidState: "invalid_state"
        case .sessionChanging: "session_changing"
        case .auditUnavailable: "audit_unavailable"
        case .databaseUnavailable: "database_unavailable"
        case .replicaDidNotAnswer: "server_unavailable"
        case .replicaStarting: "server_starting"
        case .tooLargeToPassOn: "invalid_request"
        case .unreadableStoredSession, .requestNotEncodable, .noSessionInAnswer: "internal"
        case .refusedElsewhere(let refusal): refusal.code
        case .invitation(let error): error.code
        case .noInvitationPending: "no_invitation_pending"
        case .machineDidNotAnswer: "machine_did_not_answer"
        case .notInQueue: "unknown_invitation"
        case .invitationTaken: "invitation_taken"
        case .invitationWithdrawn: "invitation_withdrawn"
        case .wrongChannel: "wrong_channel"
        case .tooManyQueued: "too_many_invitations"
        case .invitationNotAnswerable: "invitation_not_allowed"
        case .mailNotConfigured: "mail_not_configured"
        case .recipientNotAllowed: "recipient_not_allowed"
        case .mailNotSent: "mail_not_sent"
        }
    }

    public var message: String {
        switch self {
        case .invalidRequest(let message): message
        case .machine(let error): error.message
        case .machineRevoked(let name): "\(name) is revoked"
        case .notInDirectory(let name): "\(name) is no longer a computer object in the directory"
        case .directory(let error): error.message
        case .deniedByPolicy(let explanation): explanation
        case .machineBusy(let name): "\(name) is already in a session"
        case .tooManyOffers(let name, let recent, _):
            "\(name) was offered help \(recent) times in the last minute; wait a moment"
        case .machineOffline(let name): "\(name) is not connected"
        case .onlyTheHelperMayRequestControl: "only the helper of this session may request control"
        case .onlyTheHelperOrAnAdministratorMayEnd: "only the helper or an administrator may end a session"
        case .onlyTheHelperMayChat: "only the helper of this session may chat with the person at the machine"
        case .chatNotOpen(let state):
            state == "ended"
                ? "the session has ended; chat ended with it"
                : "chat opens when the person at the machine accepts; the session is "
                    + state.replacingOccurrences(of: "_", with: " ")
        case .invalidChatLine(let error): error.description
        case .tooManyChatLines:
            "at most \(SessionTable.chatLinesPerWindow) chat messages in "
                + "\(SessionTable.chatWindow.components.seconds) seconds; wait a moment"
        case .unknownSession(let id): "no session \(id) is known here"
        case .sessionEnded: "the session has ended"
        case .invalidState(let error): error.description
        case .sessionChanging: "the session changed while this was being recorded; look at it again"
        case .auditUnavailable: CommonFailure.auditUnavailable
        case .databaseUnavailable: CommonFailure.databaseUnavailable
        case .replicaDidNotAnswer: "the server the machine's agent is connected to did not answer; try again"
        case .replicaStarting: "try again"
        case .tooLargeToPassOn: "the request is too large to pass on"
        case .unreadableStoredSession: "the session's stored state is not valid"
        case .requestNotEncodable: "the request could not be encoded"
        case .noSessionInAnswer: "the other server gave no session"
        case .refusedElsewhere(let refusal): refusal.message
        case .invitation(let error): error.description
        case .noInvitationPending(let id):
            "no invitation is being opened by you for session \(id); open the invitation again"
        case .machineDidNotAnswer(let name): "\(name) did not answer about its invitation in time; try again"
        case .notInQueue(let id): "no invitation \(id) that you may answer is in the helpdesk's queue"
        case .invitationTaken(let name, let time):
            "\(name) took this invitation at \(Invitation.timeText(time))"
        case .invitationWithdrawn(let reason):
            reason == "expired"
                ? "the invitation expired before anyone took it" : "the person at the machine revoked the invitation"
        case .wrongChannel(let made, let used):
            "this invitation was made \(made.phrase), not \(used.phrase); the machine signed how it was to be sent"
        case .tooManyQueued(let machine, let open):
            "\(machine) has \(open) requests waiting in the helpdesk's queue already, the most it may; revoke one first"
        case .invitationNotAnswerable(let reason): reason
        case .mailNotConfigured:
            "this server sends no e-mail (its configuration has no mail section); send the invitation to the "
                + "helpdesk's queue or save it as a file"
        case .recipientNotAllowed(let address, let domains):
            "\(address) is not the address of anyone in the directory"
                + (domains.isEmpty
                    ? ", and policy allows no other addresses for this machine"
                    : ", nor in a domain that policy allows for this machine (\(domains.joined(separator: ", ")))")
        case .mailNotSent(let reason): "the invitation was not sent: \(reason)"
        }
    }

    public var kind: ServiceErrorKind {
        switch self {
        case .invalidRequest, .tooLargeToPassOn: .invalid
        case .machine(let error): error.kind
        case .machineRevoked, .notInDirectory, .machineBusy, .machineOffline, .sessionEnded, .invalidState,
            .sessionChanging, .chatNotOpen:
            .conflict
        case .invalidChatLine: .invalid
        case .tooManyChatLines(let retryAfter): .limited(retryAfter: retryAfter)
        case .directory(let error): error.kind
        case .deniedByPolicy, .onlyTheHelperMayRequestControl, .onlyTheHelperOrAnAdministratorMayEnd,
            .onlyTheHelperMayChat:
            .forbidden
        case .tooManyOffers(_, _, let retryAfter): .limited(retryAfter: retryAfter)
        case .unknownSession: .notFound
        case .auditUnavailable, .databaseUnavailable, .replicaDidNotAnswer, .replicaStarting: .unavailable
        case .unreadableStoredSession, .requestNotEncodable, .noSessionInAnswer: .internal
        case .refusedElsewhere(let refusal): refusal.kind
        case .invitation(let error):
            switch error {
            case .unreadable, .notGenuine, .notEnrolledKey, .passwordRequired: .invalid
            case .unknown: .notFound
            case .expired, .revoked, .locked, .used: .conflict
            case .wrongPassword: .forbidden
            }
        case .noInvitationPending, .notInQueue: .notFound
        case .machineDidNotAnswer: .unavailable
        case .invitationTaken, .invitationWithdrawn, .tooManyQueued: .conflict
        case .invitationNotAnswerable, .recipientNotAllowed: .forbidden
        case .mailNotConfigured: .conflict
        case .mailNotSent: .unavailable
        case .wrongChannel: .invalid
        }
    }
}

/// A refusal as one replica passes it to another: what any service error says, in a form that travels.
public struct ReplicaRefusal: ServiceError, Codable, Hashable {
    public var code: String
    public var message: String
    public var kind: ServiceErrorKind

    /// A refusal with this code, sentence and kind.
    public init(code: String, message: String, kind: ServiceErrorKind) {
        self.code = code
        self.message = message
        self.kind = kind
    }

    /// The refusal `error` is.
    public init(_ error: some ServiceError) {
        code = error.code
        message = error.message
        kind = error.kind
    }
}
