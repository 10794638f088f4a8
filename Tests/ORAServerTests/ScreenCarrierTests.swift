import Foundation
import Testing

@testable import ORAServer

@Suite("Where a screen leg is carried")
struct ScreenCarrierTests {
    @Test("a replica's relay address is host:port, an IPv6 host in brackets")
    func addresses() {
        #expect(ScreenCarrier.split("10.244.1.17:8081")! == ("10.244.1.17", 8081))
        #expect(ScreenCarrier.split("[fd00::7]:8081")! == ("fd00::7", 8081))
        #expect(ScreenCarrier.split("ora-1.ora.svc:443")! == ("ora-1.ora.svc", 443))
        for bad in ["10.244.1.17", ":8081", "host:0", "host:65536", "host:http", ""] {
            #expect(ScreenCarrier.split(bad) == nil, "\(bad)")
        }
    }

    @Test("a replica's tickets begin with the first digits of its id, and only its own are served here")
    func issuer() {
        let instance = UUID(uuidString: "0A1B2C3D-1111-4222-8333-444455556666")!
        let relay = ScreenRelay(clock: .system, metrics: ServerMetrics(), instance: instance)
        #expect(relay.issuer == "0a1b2c3d")
        let (ticket, _) = relay.issueViewerTicket(for: UUID(), holder: "uid=lena.wolf", requestedFrom: "10.0.0.7")
        #expect(ticket.hasPrefix("0a1b2c3d") && relay.issuedHere(ticket))
        #expect(!relay.issuedHere("0a1b2c3e" + String(ticket.dropFirst(8))))
    }
}
