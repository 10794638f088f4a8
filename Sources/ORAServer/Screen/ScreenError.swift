public import ORACore

/// Why a screen ticket was not issued or not honoured.
public enum ScreenError: ServiceError, Equatable {
    /// Only the session's helper may see its screen.
    case onlyTheHelperMaySeeTheScreen
    /// The session has ended.
    case sessionEnded
    /// The session runs on another replica, which serves its screen.
    case sessionElsewhere
    /// The person at the machine has not accepted the session (yet).
    case notAccepted
    /// The session has as many viewers as it may.
    case tooManyViewers(Int)
    /// The ticket presented is not one that opens a screen now.
    case ticketRefused(ScreenTicketError)

    public var code: String {
        switch self {
        case .onlyTheHelperMaySeeTheScreen: "forbidden"
        case .sessionEnded: "session_ended"
        case .sessionElsewhere: "session_elsewhere"
        case .notAccepted: "not_accepted"
        case .tooManyViewers: "too_many_viewers"
        case .ticketRefused(let error): error.code
        }
    }

    public var message: String {
        switch self {
        case .onlyTheHelperMaySeeTheScreen: "only the helper of this session may see its screen"
        case .sessionEnded: "the session has ended"
        case .sessionElsewhere: "the session runs on another server replica; ask that replica for the screen"
        case .notAccepted: "the person at the machine has not accepted the session"
        case .tooManyViewers(let most): "the session has \(most) viewers already; close one first"
        case .ticketRefused(let error): error.description
        }
    }

    public var kind: ServiceErrorKind {
        switch self {
        case .onlyTheHelperMaySeeTheScreen, .ticketRefused: .forbidden
        case .sessionEnded, .sessionElsewhere, .notAccepted, .tooManyViewers: .conflict
        }
    }
}
