/// The answer of the policy evaluator for one offer, with its explanation.
public struct Decision: Sendable, Hashable {
    /// Why an offer is denied.
    public enum DenialReason: Sendable, Hashable {
        /// No policy is about this operator and machine: the default is deny.
        case noPolicyMatched
        /// The only policies about this operator and machine leave the machine out (`exclusions` names them).
        case excluded
        /// These deny policies match.
        case deniedBy([String])
        /// Matching allow policies apply only at other times.
        case outsideSchedule(of: [String])
        /// Matching allow policies require a ticket and the offer has none.
        case ticketRequired(by: [String])
        /// Matching allow policies require a ticket of a form the offer's ticket does not have.
        case ticketDoesNotMatch(by: [String], patterns: [String])
        /// Matching allow policies allow only viewing, and the offer asks for control.
        case accessTooLow(allowed: AccessMode, by: [String])
        /// Matching allow policies answer no invitations.
        case invitationsNotAnswered(by: [String])
        /// Matching allow policies answer invitations valid for at most `longest`; this one is valid for `lifetime`.
        case invitationTooLong(lifetime: Duration, longest: Duration, by: [String])
        /// Matching allow policies answer only invitations protected by a password.
        case invitationPasswordRequired(by: [String])
    }

    /// The access granted, or `nil` when denied.
    public var allowed: AccessMode?
    /// The strongest access the deciding policies would grant (so an offer for view can say control may be asked).
    public var strongest: AccessMode?
    /// Why it is denied, or `nil` when allowed.
    public var denial: DenialReason?
    /// The policies that decided: the allowing ones, or the denying ones.
    public var policies: [String]
    /// The policies about the operator whose `targets.except` leaves the machine out, with the entry that does.
    public var exclusions: [Policy.Exclusion] = []
    /// How long the person at the machine has to answer (the shortest of the deciding policies).
    public var consentTimeout: Duration?
    /// The longest the session may last (the shortest of the deciding policies).
    public var maximumDuration: Duration?

    init(
        allowed: AccessMode,
        strongest: AccessMode,
        policies: [String],
        consentTimeout: Duration,
        maximumDuration: Duration
    ) {
        self.allowed = allowed
        self.strongest = strongest
        self.denial = nil
        self.policies = policies
        self.consentTimeout = consentTimeout
        self.maximumDuration = maximumDuration
    }

    init(denied reason: DenialReason) {
        self.allowed = nil
        self.strongest = nil
        self.denial = reason
        switch reason {
        case .noPolicyMatched, .excluded: self.policies = []
        case .deniedBy(let names), .outsideSchedule(let names), .ticketRequired(let names),
            .ticketDoesNotMatch(let names, _), .accessTooLow(_, let names), .invitationsNotAnswered(let names),
            .invitationTooLong(_, _, let names), .invitationPasswordRequired(let names):
            self.policies = names
        }
        self.consentTimeout = nil
        self.maximumDuration = nil
    }

    /// Whether the offer may be made.
    public var isAllowed: Bool { allowed != nil }

    /// One sentence for the operator, the administrator and the audit log, naming the exclusions that left a
    /// policy out.
    public var explanation: String {
        guard !exclusions.isEmpty else { return verdict }
        let left = exclusions.map { "\"\($0.policy)\" leaves this machine out (except \($0.entry))" }
        if denial == .excluded {
            return "denied: " + left.joined(separator: "; ")
        }
        return verdict + "; " + left.joined(separator: "; ")
    }

    /// The decision without the exclusions.
    private var verdict: String {
        if let allowed {
            return "allowed (\(allowed.rawValue)) by \(Self.list(policies))"
        }
        switch denial {
        case .noPolicyMatched, .excluded, .none:
            return "denied: no policy allows this operator to offer help to this machine"
        case .deniedBy(let names):
            return "denied by \(Self.list(names))"
        case .outsideSchedule(let names):
            return "denied: outside the schedule of \(Self.list(names))"
        case .ticketRequired(let names):
            return "denied: a ticket is required by \(Self.list(names))"
        case .ticketDoesNotMatch(let names, let patterns):
            return "denied: the ticket does not have the form \(patterns.joined(separator: " or ")) required by "
                + Self.list(names)
        case .accessTooLow(let allowed, let names):
            return "denied: \(Self.list(names)) allow\(names.count == 1 ? "s" : "") \(allowed.rawValue) only"
        case .invitationsNotAnswered(let names):
            return "denied: \(Self.list(names)) answer\(names.count == 1 ? "s" : "") no invitations, only offers"
        case .invitationTooLong(let lifetime, let longest, let names):
            return "denied: the invitation is valid for \(lifetime.text); \(Self.list(names)) answer"
                + "\(names.count == 1 ? "s" : "") invitations valid for at most \(longest.text)"
        case .invitationPasswordRequired(let names):
            return "denied: \(Self.list(names)) answer\(names.count == 1 ? "s" : "") only invitations protected by a "
                + "password"
        }
    }

    static func list(_ names: [String]) -> String {
        names.map { "\"\($0)\"" }.joined(separator: ", ")
    }
}
