import Foundation
import ORACore
import ORATestSupport
import Testing

@testable import ORAServer

/// What each happening adds to which series, without a server: the mapping from session steps, audit events, relay
/// bytes and directory requests to the families of `GET /metrics`.
@Suite("Server metrics: what moves which series")
struct ServerMetricsTests {
    let metrics = ServerMetrics()
    var scrape: MetricsScrape { MetricsScrape(text: String(decoding: metrics.emit(), as: UTF8.self)) }
    let offeredAt = AuditTimestamp(microseconds: 1_000_000)

    func step(_ input: SessionStateMachine.Input, to state: SessionStateMachine.State, after seconds: Int64 = 0) {
        metrics.stepped(
            input, .init(state: state, events: []), offeredAt: offeredAt,
            now: AuditTimestamp(microseconds: offeredAt.microseconds + seconds * 1_000_000))
    }

    @Test("session steps: answers with their time, control requests and stops by how, ends by reason")
    func sessionSteps() {
        step(.consent(.granted), to: .viewing, after: 7)
        step(.consent(.declined), to: .ended(.declined), after: 2)
        step(.end(.consentTimeout), to: .ended(.consentTimeout))
        step(.controlAnswer(.granted), to: .controlling)
        step(.controlAnswer(.declined), to: .viewing)
        step(.stopControl(.escape), to: .viewing)
        step(.stopControl(.ctrlC), to: .viewing)
        step(.stopControl(.ctrlC), to: .viewing)
        step(.end(.noviceEnded), to: .ended(.noviceEnded))
        step(.requestControl, to: .controlRequested)
        step(.delivered, to: .awaitingConsent)
        let now = scrape
        #expect(now["ora_offers_total{outcome=\"accepted\"}"] == 1)
        #expect(now["ora_offers_total{outcome=\"declined\"}"] == 1)
        #expect(now["ora_offers_total{outcome=\"no_answer\"}"] == 1)
        #expect(now["ora_consent_answer_seconds_count{answer=\"accepted\"}"] == 1)
        #expect(now["ora_consent_answer_seconds_sum{answer=\"accepted\"}"] == 7)
        // 7 s lies in the bucket up to 10 s, not in the one up to 5 s.
        #expect(now["ora_consent_answer_seconds_bucket{answer=\"accepted\",le=\"5.0\"}"] == 0)
        #expect(now["ora_consent_answer_seconds_bucket{answer=\"accepted\",le=\"10.0\"}"] == 1)
        #expect(now["ora_consent_answer_seconds_sum{answer=\"declined\"}"] == 2)
        #expect(now["ora_control_requests_total{answer=\"accepted\"}"] == 1)
        #expect(now["ora_control_requests_total{answer=\"declined\"}"] == 1)
        #expect(now["ora_control_stops_total{by=\"esc\"}"] == 1)
        #expect(now["ora_control_stops_total{by=\"ctrl_c\"}"] == 2)
        #expect(now["ora_control_stops_total{by=\"button\"}"] == 0)
        #expect(now["ora_sessions_ended_total{reason=\"declined\"}"] == 1)
        #expect(now["ora_sessions_ended_total{reason=\"consent_timeout\"}"] == 1)
        #expect(now["ora_sessions_ended_total{reason=\"novice_ended\"}"] == 1)
        #expect(now["ora_sessions_ended_total{reason=\"helper_ended\"}"] == 0)
    }

    func event(
        _ type: AuditEventType, outcome: AuditOutcome = .success, details: [String: AuditValue] = [:]
    ) -> AuditEvent {
        AuditEvent(type, time: offeredAt, actor: .machine("ws-0101"), outcome: outcome, details: details)
    }

    @Test("audit events: refused offers by why, answers turned away, chat lines by author, invitation events")
    func auditEvents() {
        metrics.recorded(event(.offerDenied, outcome: .denied))
        metrics.recorded(event(.offerDenied, outcome: .failure, details: ["refused": .string("machine_offline")]))
        metrics.recorded(event(.offerDenied, outcome: .failure))
        metrics.recorded(event(.consentRejected, outcome: .denied))
        metrics.recorded(event(.chatMessage, details: ["from": .string("person")]))
        metrics.recorded(event(.chatMessage, details: ["from": .string("helper")]))
        metrics.recorded(event(.chatMessage, details: ["from": .string("someone else")]))
        metrics.recorded(event(.invitationCreated))
        metrics.recorded(event(.invitationPasswordFailed, outcome: .denied))
        metrics.recorded(event(.sessionStarted))
        let now = scrape
        #expect(now["ora_offers_total{outcome=\"denied\"}"] == 1)
        #expect(now["ora_offers_total{outcome=\"unavailable\"}"] == 2)
        #expect(now["ora_consent_rejected_total"] == 1)
        #expect(now["ora_chat_lines_total{from=\"person\"}"] == 1)
        #expect(now["ora_chat_lines_total{from=\"helper\"}"] == 1)
        #expect(now["ora_invitation_events_total{event=\"created\"}"] == 1)
        #expect(now["ora_invitation_events_total{event=\"password_failed\"}"] == 1)
        #expect(now["ora_invitation_events_total{event=\"claimed\"}"] == 0)
        // An author outside the fixed set adds no series.
        #expect(!now.text.contains("someone else"))
    }

    @Test("relay bytes by direction, audit commits and refusals, directory requests and errors by operation")
    func transfersAndRequests() {
        metrics.relayed(toViewer: 4096, fromViewer: 0)
        metrics.relayed(toViewer: 1024, fromViewer: 10)
        metrics.auditCommitted(after: .milliseconds(3))
        metrics.auditRefused()
        metrics.directory("bind", took: .milliseconds(20), failed: false)
        metrics.directory("search", took: .milliseconds(2), failed: true)
        metrics.directory("modify", took: .milliseconds(2), failed: true)
        let now = scrape
        #expect(now["ora_relay_bytes_total{direction=\"to_viewer\"}"] == 5120)
        #expect(now["ora_relay_bytes_total{direction=\"from_viewer\"}"] == 10)
        #expect(now["ora_audit_write_seconds_count"] == 1)
        #expect(now["ora_audit_write_seconds_bucket{le=\"0.005\"}"] == 1)
        #expect(now["ora_audit_refusals_total"] == 1)
        #expect(now["ora_directory_request_seconds_count{operation=\"bind\"}"] == 1)
        #expect(now["ora_directory_errors_total{operation=\"bind\"}"] == 0)
        #expect(now["ora_directory_errors_total{operation=\"search\"}"] == 1)
        #expect(!now.text.contains("modify"))
    }

    @Test("what is open now is read at each scrape, from the source set last")
    func currentState() {
        #expect(scrape["ora_agents_connected"] == 0)
        metrics.read {
            var now = ServerMetrics.Current()
            now.agentsConnected = 12
            now.sessionsViewing = 3
            now.sessionsControlling = 1
            now.screensOpen = 2
            now.auditQueued = 5
            now.auditJournaled = 7
            now.policyVersion = 42
            return now
        }
        let now = scrape
        #expect(now["ora_agents_connected"] == 12)
        #expect(now["ora_sessions_active{mode=\"view\"}"] == 3)
        #expect(now["ora_sessions_active{mode=\"control\"}"] == 1)
        #expect(now["ora_screens_open"] == 2)
        #expect(now["ora_audit_pending_events{stage=\"writer\"}"] == 5)
        #expect(now["ora_audit_pending_events{stage=\"journal\"}"] == 7)
        #expect(now["ora_policy_active_version"] == 42)
    }

    @Test("every family is in Docs/Metrics.md, with its help text and type in the scrape")
    func documented() throws {
        let documentation = try String(contentsOfFile: SourceTree.root + "/Docs/Metrics.md", encoding: .utf8)
        let now = scrape
        #expect(!now.families.isEmpty)
        for family in now.families {
            #expect(documentation.contains("`\(family)`"), "Docs/Metrics.md does not name \(family)")
            #expect(now.text.contains("# HELP \(family) "), "\(family) has no help text")
        }
    }
}
