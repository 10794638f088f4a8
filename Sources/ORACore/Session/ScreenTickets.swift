import Crypto
public import Foundation

/// The single-use, short-lived tickets that admit the two legs of a screen connection: the helper's viewer and
/// the agent's screen. A ticket names one session and one leg (and, for a viewer, the operator it was issued to);
/// it is stored only as its SHA-256, works once, and lapses after `lifetime`. Redeeming tells a wrong ticket from an
/// expired or a replayed one, so each refusal can be recorded for what it was.
public struct ScreenTickets: Sendable {
    /// How long a ticket may wait to be used.
    public static let lifetime: Duration = .seconds(30)

    /// When a ticket issued at `date` expires.
    public static func expiry(ofTicketIssuedAt date: Date) -> Date {
        date.addingTimeInterval(Double(lifetime.components.seconds))
    }

    /// Which side of the relay a ticket admits.
    public enum Leg: String, Sendable, Hashable, Codable {
        case viewer, agent
    }

    /// What a redeemed ticket admits.
    public struct Claim: Sendable, Hashable {
        /// The session.
        public var session: UUID
        /// The side.
        public var leg: Leg
        /// For a viewer ticket the operator it was issued to, by DN; for an agent ticket the viewer connection
        /// it answers.
        public var holder: String?
        /// For a viewer ticket, the address of the helper who asked for it (the viewer's connection may come
        /// through another replica, which carries it here).
        public var requestedFrom: String?

        /// Creates a claim.
        public init(session: UUID, leg: Leg, holder: String?, requestedFrom: String? = nil) {
            self.session = session
            self.leg = leg
            self.holder = holder
            self.requestedFrom = requestedFrom
        }
    }

    private struct Entry: Sendable {
        var claim: Claim
        var expires: Date
        var used = false
    }

    /// Issued tickets by their hash; used ones stay until they would have expired, so a replay is recognised.
    private var entries: [String: Entry] = [:]

    /// The first `issuerLength` hex digits of every ticket this book issues: which replica issued it, so that a
    /// leg that reaches another replica can be carried to this one.
    public let issuer: String
    /// How many hex digits of a ticket name its issuer; the other 56 are random (224 bits).
    public static let issuerLength = 8

    /// An empty book whose tickets begin with `issuer` (`issuerLength` lowercase hex digits; random by default).
    public init(issuer: String? = nil) {
        self.issuer = issuer ?? Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0.prefix(4)) })
    }

    /// The issuer a ticket names (its first `issuerLength` characters).
    public static func issuer(of ticket: String) -> String {
        String(ticket.prefix(issuerLength))
    }

    /// A new ticket for `leg` of `session`, valid until `now + lifetime`.
    /// - Parameter requestedFrom: for a viewer ticket, the address of the helper who asks for it.
    /// - Returns: the ticket, 64 hex digits: the issuer, then 28 random bytes.
    public mutating func issue(
        for session: UUID, leg: Leg, holder: String? = nil, requestedFrom: String? = nil, now: Date
    ) -> String {
        prune(now: now)
        let ticket = issuer + Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0.prefix(28)) })
        entries[Self.hash(ticket)] = Entry(
            claim: Claim(session: session, leg: leg, holder: holder, requestedFrom: requestedFrom),
            expires: Self.expiry(ofTicketIssuedAt: now))
        return ticket
    }

    /// Uses `ticket` for `leg`: it works once, before it expires, and only for the leg it was issued for.
    /// - Throws: `ScreenTicketError` saying why it does not admit.
    public mutating func redeem(_ ticket: String, for leg: Leg, now: Date) throws(ScreenTicketError) -> Claim {
        prune(now: now)
        let key = Self.hash(ticket)
        guard var entry = entries[key] else { throw .unknown }
        guard entry.claim.leg == leg else { throw .wrongLeg }
        guard !entry.used else { throw .replayed }
        guard entry.expires > now else { throw .expired }
        entry.used = true
        entries[key] = entry
        return entry.claim
    }

    /// Whether `ticket` would be admitted for `leg` now, without using it.
    public func check(_ ticket: String, for leg: Leg, now: Date) throws(ScreenTicketError) -> Claim {
        var copy = self
        return try copy.redeem(ticket, for: leg, now: now)
    }

    /// Drops every ticket of `session` (it ended): none of them admits any more.
    public mutating func revoke(session: UUID) {
        entries = entries.filter { $0.value.claim.session != session }
    }

    /// Forgets tickets that expired more than a lifetime ago; until then an expired ticket is reported as expired.
    private mutating func prune(now: Date) {
        let horizon = now.addingTimeInterval(-Double(Self.lifetime.components.seconds))
        entries = entries.filter { $0.value.expires > horizon }
    }

    private static func hash(_ ticket: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Data(ticket.utf8))))
    }
}

/// Why a screen ticket does not admit.
public enum ScreenTicketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No such ticket was issued (or it was revoked with its session, or forgotten long after it expired).
    case unknown
    /// The ticket is for the other leg.
    case wrongLeg
    /// The ticket was used already.
    case replayed
    /// The ticket's lifetime passed.
    case expired

    /// The stable code, for answers and audit events.
    public var code: String {
        switch self {
        case .unknown: "unknown_ticket"
        case .wrongLeg: "wrong_leg"
        case .replayed: "ticket_replayed"
        case .expired: "ticket_expired"
        }
    }

    public var description: String {
        switch self {
        case .unknown: "the screen ticket is not valid"
        case .wrongLeg: "the screen ticket is for the other side of the connection"
        case .replayed: "the screen ticket was used already"
        case .expired: "the screen ticket expired; ask for a new one"
        }
    }
}
