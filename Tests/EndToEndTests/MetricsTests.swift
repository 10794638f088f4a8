import Foundation
import ORAClient
import ORATestSupport
import Testing

/// `GET /metrics` against a real server, agent and directory: each family the operators' documentation names is
/// there from the first scrape, moves when what it counts happens, and never names a machine, an operator or a
/// session. Families whose cause needs an outage or a screen are checked where those are tested: the screen's in
/// `ScreenTests`, the refusals in `AuditResilienceTests`, answers turned away in `ForgedConsentTests`.
@Suite("Metrics that answer an operator's questions")
struct MetricsTests {
    /// Every family of the server's own, as Docs/Metrics.md lists them.
    static let families: Set<String> = [
        "ora_agents_connected", "ora_offers_total", "ora_consent_answer_seconds", "ora_consent_rejected_total",
        "ora_sessions_active", "ora_sessions_ended_total", "ora_control_requests_total", "ora_control_stops_total",
        "ora_screens_open", "ora_relay_bytes_total", "ora_audit_write_seconds", "ora_audit_pending_events",
        "ora_audit_refusals_total", "ora_directory_request_seconds", "ora_directory_errors_total",
        "ora_policy_active_version", "ora_invitation_events_total", "ora_chat_lines_total",
        "ora_screen_legs_carried_total",
    ]

    @Test("an offer, its consent, control, chat and end, a refusal by policy and an offline machine move their metrics")
    func offerMovesTheMetrics() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let server = setup.server
        try await setup.enroll(["ws-0102"], below: "ou=Workstations,ou=Computers,dc=corp,dc=example")
        let agent = try setup.startAgent()
        defer { agent.send(SIGKILL) }
        let lena = try await server.token("lena.wolf")
        try await waitUntilOnline("ws-0101", server: server, token: lena)

        let first = try await MetricsScrape(server)
        #expect(Self.families.isSubset(of: first.families), "\(Self.families.subtracting(first.families))")
        #expect(first["ora_agents_connected"] == 1)
        #expect(first["ora_policy_active_version"] == 1)
        #expect(first["ora_sessions_active{mode=\"view\"}"] == 0)
        // Every labelled series is there at 0 before anything happened, so rates and alerts see it.
        #expect(first["ora_offers_total{outcome=\"no_answer\"}"] == 0)
        #expect(first["ora_control_stops_total{by=\"esc\"}"] == 0)
        #expect(first["ora_audit_refusals_total"] == 0)
        #expect(first.text.contains("# HELP ora_offers_total Offers of help by how they ended."))

        // Accepted, then control granted: the session counts as viewing, then as in control.
        let offered = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0101", "mode": "control", "ticket": "INC0000001"}"#,
            token: lena)
        let id = try #require(offered.json(Schemas.Session.self)?.id, "\(offered.body)")
        _ = try await session(id, on: server, token: lena) { $0.state == .viewing }
        // A step is counted once it is recorded, a moment after the session's state shows it.
        let accepted = "ora_offers_total{outcome=\"accepted\"}"
        let viewing = try await scrape(server) { $0.growth(of: accepted, since: first) >= 1 }
        #expect(viewing.growth(of: accepted, since: first) == 1)
        #expect(viewing.growth(of: "ora_consent_answer_seconds_count{answer=\"accepted\"}", since: first) == 1)
        #expect(viewing["ora_sessions_active{mode=\"view\"}"] == 1)

        let asked = try await HTTP.post(server.base + "/api/v1/sessions/\(id)/control", token: lena)
        try #require(asked.status == 200, "\(asked.body)")
        _ = try await session(id, on: server, token: lena) { $0.state == .controlling }
        let chatted = try await HTTP.post(
            server.base + "/api/v1/sessions/\(id)/chat", json: #"{"text": "I am looking at it now"}"#, token: lena)
        #expect(chatted.status == 201, "\(chatted.body)")
        let granted = "ora_control_requests_total{answer=\"accepted\"}"
        let controlling = try await scrape(server) { $0.growth(of: granted, since: viewing) >= 1 }
        #expect(controlling["ora_sessions_active{mode=\"view\"}"] == 0)
        #expect(controlling["ora_sessions_active{mode=\"control\"}"] == 1)
        #expect(controlling.growth(of: granted, since: viewing) == 1)
        #expect(controlling.growth(of: "ora_chat_lines_total{from=\"helper\"}", since: viewing) == 1)

        #expect(try await HTTP.send("DELETE", server.base + "/api/v1/sessions/\(id)", token: lena).status == 200)
        _ = try await session(id, on: server, token: lena) { $0.state == .ended }

        // Declined by the person; refused by policy (tier 1 may only view); the machine offline.
        let declined = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0101", "ticket": "INC0000002"}"#, token: lena)
        let declinedID = try #require(declined.json(Schemas.Session.self)?.id, "\(declined.body)")
        _ = try await session(declinedID, on: server, token: lena) { $0.state == .ended }
        let tom = try await server.token("tom.berger")
        let denied = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0101", "mode": "control"}"#, token: tom)
        #expect(denied.status == 403, "\(denied.body)")
        let offline = try await HTTP.post(
            server.base + "/api/v1/offers", json: #"{"machine": "ws-0102", "ticket": "INC0000001"}"#, token: lena)
        #expect(offline.status == 409, "\(offline.body)")

        let last = try await scrape(server) {
            $0.growth(of: "ora_sessions_ended_total{reason=\"declined\"}", since: first) >= 1
                && $0.growth(of: "ora_sessions_ended_total{reason=\"helper_ended\"}", since: first) >= 1
        }
        #expect(last["ora_sessions_active{mode=\"control\"}"] == 0)
        #expect(last.growth(of: "ora_sessions_ended_total{reason=\"helper_ended\"}", since: first) == 1)
        #expect(last.growth(of: "ora_sessions_ended_total{reason=\"declined\"}", since: first) == 1)
        #expect(last.growth(of: "ora_offers_total{outcome=\"declined\"}", since: first) == 1)
        #expect(last.growth(of: "ora_consent_answer_seconds_count{answer=\"declined\"}", since: first) == 1)
        #expect(last.growth(of: "ora_offers_total{outcome=\"denied\"}", since: first) == 1)
        #expect(last.growth(of: "ora_offers_total{outcome=\"unavailable\"}", since: first) == 1)
        // Each of those events was committed through the writer, and tom's login asked the directory.
        let events = try #require(Double(try await server.sql("SELECT count(*) FROM audit_events")))
        #expect(last["ora_audit_write_seconds_count"] ?? 0 >= 10, "\(events) events stored")
        #expect(last.growth(of: "ora_directory_request_seconds_count{operation=\"bind\"}", since: first) >= 1)
        #expect(last.growth(of: "ora_directory_request_seconds_count{operation=\"search\"}", since: first) >= 1)
        #expect(last["ora_directory_errors_total{operation=\"bind\"}"] == 0)

        // Hummingbird's request metrics, as Docs/Metrics.md names them, beside ora's own.
        #expect(last.families.isSuperset(of: ["hb_requests", "http_server_request_duration"]), "\(last.families)")

        // Fixed labels only: no machine, operator or session appears anywhere in the scrape.
        for name in ["ws-0101", "WS-0101", "ws-0102", "lena", "tom.berger", id, declinedID] {
            #expect(!last.text.contains(name), "the metrics name \(name)")
        }
    }

    /// A scrape of `server`'s metrics once `moved` holds for it, or the last one tried within 15 s.
    func scrape(_ server: RunningServer, until moved: (MetricsScrape) -> Bool) async throws -> MetricsScrape {
        try await eventually({ try await MetricsScrape(server) }, until: moved)
    }
}
