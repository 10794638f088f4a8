import Foundation
import ORACore
import Testing

@Suite("Screen tickets")
struct ScreenTicketsTests {
    static let session = UUID(uuidString: "11111111-2222-4333-8444-555555555555")!
    static let other = UUID(uuidString: "66666666-2222-4333-8444-555555555555")!
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static let helper = "uid=lena.wolf,ou=People,dc=corp,dc=example"

    @Test("a ticket admits once, for its leg, its session and its holder")
    func admitsOnce() throws {
        var book = ScreenTickets()
        let ticket = book.issue(for: Self.session, leg: .viewer, holder: Self.helper, now: Self.start)
        #expect(ticket.count == 64 && ticket.allSatisfy(\.isHexDigit))
        #expect(
            try book.check(ticket, for: .viewer, now: Self.start)
                == .init(session: Self.session, leg: .viewer, holder: Self.helper))
        let claim = try book.redeem(ticket, for: .viewer, now: Self.start.addingTimeInterval(1))
        #expect(claim == .init(session: Self.session, leg: .viewer, holder: Self.helper))
        #expect(throws: ScreenTicketError.replayed) {
            try book.redeem(ticket, for: .viewer, now: Self.start.addingTimeInterval(2))
        }
        #expect(throws: ScreenTicketError.replayed) { try book.check(ticket, for: .viewer, now: Self.start) }
    }

    @Test("every ticket begins with its issuer, and the rest differs from ticket to ticket")
    func issuer() throws {
        var book = ScreenTickets(issuer: "0a1b2c3d")
        let tickets = (0..<50).map { _ in
            book.issue(for: Self.session, leg: .agent, holder: nil, requestedFrom: "10.0.0.7", now: Self.start)
        }
        #expect(tickets.allSatisfy { $0.count == 64 && $0.hasPrefix("0a1b2c3d") && $0.allSatisfy(\.isHexDigit) })
        #expect(tickets.allSatisfy { ScreenTickets.issuer(of: $0) == "0a1b2c3d" })
        #expect(Set(tickets.map { $0.dropFirst(8) }).count == 50)
        #expect(try book.redeem(tickets[0], for: .agent, now: Self.start).requestedFrom == "10.0.0.7")
        let random = ScreenTickets().issuer
        #expect(random.count == 8 && random.allSatisfy(\.isHexDigit))
    }

    @Test("checking does not use the ticket")
    func checkDoesNotUse() throws {
        var book = ScreenTickets()
        let ticket = book.issue(for: Self.session, leg: .viewer, holder: Self.helper, now: Self.start)
        _ = try book.check(ticket, for: .viewer, now: Self.start)
        _ = try book.check(ticket, for: .viewer, now: Self.start)
        _ = try book.redeem(ticket, for: .viewer, now: Self.start)
    }

    @Test("a viewer ticket does not open the agent's leg, nor the other way round")
    func wrongLeg() throws {
        var book = ScreenTickets()
        let viewer = book.issue(for: Self.session, leg: .viewer, holder: Self.helper, now: Self.start)
        let agent = book.issue(for: Self.session, leg: .agent, now: Self.start)
        #expect(throws: ScreenTicketError.wrongLeg) { try book.redeem(viewer, for: .agent, now: Self.start) }
        #expect(throws: ScreenTicketError.wrongLeg) { try book.redeem(agent, for: .viewer, now: Self.start) }
        // A refusal does not spend the ticket for its own leg.
        #expect(try book.redeem(agent, for: .agent, now: Self.start).leg == .agent)
    }

    @Test("a ticket lapses after its lifetime, and is reported as expired for a while after")
    func expiry() throws {
        var book = ScreenTickets()
        let lifetime = Double(ScreenTickets.lifetime.components.seconds)
        let ticket = book.issue(for: Self.session, leg: .viewer, holder: Self.helper, now: Self.start)
        #expect(throws: ScreenTicketError.expired) {
            try book.redeem(ticket, for: .viewer, now: Self.start.addingTimeInterval(lifetime))
        }
        #expect(throws: ScreenTicketError.expired) {
            try book.redeem(ticket, for: .viewer, now: Self.start.addingTimeInterval(lifetime * 1.5))
        }
        // Long after, it is forgotten: unknown, and still refused.
        #expect(throws: ScreenTicketError.unknown) {
            try book.redeem(ticket, for: .viewer, now: Self.start.addingTimeInterval(lifetime * 3))
        }
    }

    @Test("made-up, altered and revoked tickets are unknown")
    func unknown() throws {
        var book = ScreenTickets()
        let ticket = book.issue(for: Self.session, leg: .viewer, holder: Self.helper, now: Self.start)
        let kept = book.issue(for: Self.other, leg: .viewer, holder: Self.helper, now: Self.start)
        #expect(throws: ScreenTicketError.unknown) { try book.redeem("", for: .viewer, now: Self.start) }
        #expect(throws: ScreenTicketError.unknown) {
            try book.redeem(String(repeating: "0", count: 64), for: .viewer, now: Self.start)
        }
        let altered = String(ticket.dropLast()) + (ticket.last == "0" ? "1" : "0")
        #expect(throws: ScreenTicketError.unknown) { try book.redeem(altered, for: .viewer, now: Self.start) }
        #expect(throws: ScreenTicketError.unknown) {
            try book.redeem(ticket.uppercased(), for: .viewer, now: Self.start)
        }
        book.revoke(session: Self.session)
        #expect(throws: ScreenTicketError.unknown) { try book.redeem(ticket, for: .viewer, now: Self.start) }
        #expect(try book.redeem(kept, for: .viewer, now: Self.start).session == Self.other)
    }

    @Test("every ticket is different")
    func distinct() {
        var book = ScreenTickets()
        let tickets = (0..<200).map { _ in book.issue(for: Self.session, leg: .agent, now: Self.start) }
        #expect(Set(tickets).count == 200)
    }

    @Test("each refusal has its own code and message")
    func errors() {
        #expect(ScreenTicketError.unknown.code == "unknown_ticket")
        #expect(ScreenTicketError.wrongLeg.code == "wrong_leg")
        #expect(ScreenTicketError.replayed.code == "ticket_replayed")
        #expect(ScreenTicketError.expired.code == "ticket_expired")
        #expect(ScreenTicketError.expired.description == "the screen ticket expired; ask for a new one")
    }
}
