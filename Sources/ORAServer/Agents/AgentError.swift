public import Foundation
public import ORACore
public import ORADirectory

/// Why `AgentService` refused: enrollment, tokens and the register of machines.
public enum AgentError: ServiceError, Equatable {
    /// A value in the request is out of range or malformed; says which and why.
    case invalidRequest(String)
    /// The enrollment token is unknown, used up, expired or revoked.
    case invalidEnrollmentToken
    /// The token may enroll only what its binding allows, and `machine` is not that.
    case tokenNotFor(machine: String, binding: EnrollmentBinding)
    /// The directory has no computer object with this name.
    case notADomainMachine(String)
    /// The name is enrolled (or revoked) already; only an administrator's re-key gives it a new key.
    case alreadyEnrolled(String, revoked: Bool)
    /// No machine of this name is enrolled.
    case unknownMachine(String)
    /// No enrollment token has this id, or it was revoked already.
    case unknownToken(UUID)
    /// The machine is revoked already.
    case alreadyRevoked(String)
    /// The directory could not answer.
    case directory(DirectoryError)
    /// The database could not be reached (the cause is in the server's log).
    case databaseUnavailable
    /// A doctor's report the server does not take: not the machine's signature, stale, or malformed.
    case doctorReportRefused(DoctorReportError)
    /// A doctor's report as recent as, or older than, the one kept.
    case doctorReportNotNewer

    public var code: String {
        switch self {
        case .invalidRequest: "invalid_request"
        case .invalidEnrollmentToken: "invalid_enrollment_token"
        case .tokenNotFor: "token_not_for_machine"
        case .notADomainMachine: "not_a_domain_machine"
        case .alreadyEnrolled(_, let revoked): revoked ? "machine_revoked" : "already_enrolled"
        case .unknownMachine: "unknown_machine"
        case .unknownToken: "unknown_token"
        case .alreadyRevoked: "already_revoked"
        case .directory(let error): error.code
        case .databaseUnavailable: "database_unavailable"
        case .doctorReportRefused(.badSignature): "bad_signature"
        case .doctorReportRefused(.stale): "stale_report"
        case .doctorReportRefused(.invalid): "invalid_request"
        case .doctorReportNotNewer: "report_not_newer"
        }
    }

    public var message: String {
        switch self {
        case .invalidRequest(let message): message
        case .invalidEnrollmentToken:
            "the enrollment token is not valid: unknown, used up, expired or revoked; "
                + "ask an administrator for a new one"
        case .tokenNotFor(let machine, let binding):
            "this enrollment token may enroll \(binding.description), which \(machine) is not"
        case .notADomainMachine(let name):
            "the directory has no computer object named \(name); only domain machines may enroll"
        case .alreadyEnrolled(let name, let revoked):
            "\(name) is \(revoked ? "revoked" : "enrolled already"); only an administrator can give it a new key "
                + "(ora agents rekey \(name))"
        case .unknownMachine(let name): "no machine named \(name) is enrolled"
        case .unknownToken(let id):
            "no enrollment token \(id.uuidString.lowercased()) can be revoked (none, or revoked already)"
        case .alreadyRevoked(let name): "\(name) is already revoked"
        case .directory(let error): error.message
        case .databaseUnavailable: CommonFailure.databaseUnavailable
        case .doctorReportRefused(let error): error.description
        case .doctorReportNotNewer: "a report as recent or more recent is kept already"
        }
    }

    public var kind: ServiceErrorKind {
        switch self {
        case .invalidRequest: .invalid
        case .invalidEnrollmentToken: .unauthenticated
        case .tokenNotFor, .notADomainMachine: .forbidden
        case .alreadyEnrolled, .alreadyRevoked: .conflict
        case .unknownMachine, .unknownToken: .notFound
        case .directory(let error): error.kind
        case .databaseUnavailable: .unavailable
        case .doctorReportRefused(.badSignature): .forbidden
        case .doctorReportRefused: .invalid
        case .doctorReportNotNewer: .conflict
        }
    }
}
