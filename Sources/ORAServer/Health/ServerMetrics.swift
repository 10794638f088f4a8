import Foundation
public import ORACore
public import Prometheus
import Synchronization

/// What the server counts for the people who run it, under `GET /metrics` beside the HTTP request metrics; the set
/// is documented in `Docs/Metrics.md`, with the alert rules built on it.
///
/// Every family has fixed labels — an outcome, a mode, a reason — and never a machine, an operator or a session, so
/// a fleet of any size is the same few series. Counters move where things happen; what is open right now (agents,
/// sessions, screens, the audit queue, the active policy) is read when the metrics are scraped, from the state that
/// decides it, so it cannot drift.
public final class ServerMetrics: Sendable {
    /// What is open right now, read at each scrape.
    public struct Current: Sendable {
        public var agentsConnected = 0
        public var sessionsViewing = 0
        public var sessionsControlling = 0
        public var screensOpen = 0
        public var auditQueued = 0
        public var auditJournaled = 0
        public var policyVersion = 0

        public init() {}
    }

    /// How an offer of help ended up, as `ora_offers_total` counts it.
    public enum OfferOutcome: String, Sendable, CaseIterable {
        /// The person said yes.
        case accepted
        /// The person said no.
        case declined
        /// Nobody answered before the consent timeout.
        case noAnswer = "no_answer"
        /// Policy did not allow it.
        case denied
        /// It could not be made: the machine offline, busy, unknown, or asked too often.
        case unavailable
    }

    /// The registry the families are in, which `GET /metrics` prints.
    public let registry: PrometheusCollectorRegistry

    private let agents: Gauge
    private let offers: [OfferOutcome: Counter]
    private let consentSeconds: [ConsentAnswer: DurationHistogram]
    private let consentRejected: Counter
    private let sessionsActive: (view: Gauge, control: Gauge)
    private let sessionsEnded: [SessionEndReason: Counter]
    private let controlRequests: [ConsentAnswer: Counter]
    private let controlStops: [ControlStopMethod: Counter]
    private let screensOpen: Gauge
    private let relayBytes: (toViewer: Counter, fromViewer: Counter)
    /// Screen legs carried to the replica that issued their tickets, by leg and whether that replica took them.
    private let legsCarried: [String: Counter]
    private let auditWriteSeconds: DurationHistogram
    private let auditQueued: (writer: Gauge, journal: Gauge)
    private let auditRefusals: Counter
    private let directorySeconds: [DirectoryOperation: DurationHistogram]
    private let directoryErrors: [DirectoryOperation: Counter]
    private let policyVersion: Gauge
    private let invitations: [AuditEventType: Counter]
    private let chatLines: [ChatMessage.Author: Counter]
    private let current = Mutex<(@Sendable () -> Current)?>(nil)

    /// The kinds of directory request, as `ora_directory_request_seconds` labels them.
    public typealias DirectoryOperation = String

    /// The directory operations timed: a bind (an operator's login), a search, a reachability check.
    public static let directoryOperations: [DirectoryOperation] = ["bind", "search", "check"]

    /// The invitation events counted, by the event's name.
    static let invitationEvents: [AuditEventType] = AuditEventType.allCases.filter {
        $0.rawValue.hasPrefix("invitation.")
    }

    /// Creates every family in `registry`, each labelled series at zero, so that rates and alerts see them from the
    /// first scrape.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "ora", metricName: metric, unitName: unit, helpText: help)
        }
        let secondsBuckets: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5), .seconds(10),
        ]
        let answerBuckets: [Duration] = [1, 2, 5, 10, 20, 30, 60, 120, 300].map { .seconds($0) }

        agents = registry.makeGauge(
            descriptor: name("agents_connected", "", "Agents connected to this server now."))
        let offerName = name("offers", "total", "Offers of help by how they ended.")
        offers = Dictionary(
            uniqueKeysWithValues: OfferOutcome.allCases.map {
                ($0, registry.makeCounter(descriptor: offerName, labels: [("outcome", $0.rawValue)]))
            })
        let consentName = name(
            "consent_answer", "seconds", "Time from an offer to the person's answer, by answer.")
        consentSeconds = Dictionary(
            uniqueKeysWithValues: [ConsentAnswer.granted, .declined].map {
                (
                    $0,
                    registry.makeDurationHistogram(
                        descriptor: consentName, labels: [("answer", Self.label($0))], buckets: answerBuckets)
                )
            })
        consentRejected = registry.makeCounter(
            descriptor: name(
                "consent_rejected", "total",
                "Consent answers turned away: not signed by the machine's key, for another question, or replayed."))
        let activeName = name("sessions_active", "", "Sessions the person accepted, open now, by mode.")
        sessionsActive = (
            registry.makeGauge(descriptor: activeName, labels: [("mode", "view")]),
            registry.makeGauge(descriptor: activeName, labels: [("mode", "control")])
        )
        let endedName = name("sessions_ended", "total", "Sessions ended, by reason.")
        sessionsEnded = Dictionary(
            uniqueKeysWithValues: SessionEndReason.allCases.map {
                ($0, registry.makeCounter(descriptor: endedName, labels: [("reason", $0.rawValue)]))
            })
        let controlName = name("control_requests", "total", "Requests for control answered, by answer.")
        controlRequests = Dictionary(
            uniqueKeysWithValues: [ConsentAnswer.granted, .declined].map {
                ($0, registry.makeCounter(descriptor: controlName, labels: [("answer", Self.label($0))]))
            })
        let stopsName = name(
            "control_stops", "total", "Control taken back, by how: esc, ctrl_c, the window's button, the helper.")
        controlStops = Dictionary(
            uniqueKeysWithValues: ControlStopMethod.allCases.map {
                ($0, registry.makeCounter(descriptor: stopsName, labels: [("by", $0.rawValue)]))
            })
        screensOpen = registry.makeGauge(
            descriptor: name("screens_open", "", "Screen connections (viewer to agent) relayed now."))
        let bytesName = name("relay_bytes", "total", "Bytes of screen relayed, by direction.")
        relayBytes = (
            registry.makeCounter(descriptor: bytesName, labels: [("direction", "to_viewer")]),
            registry.makeCounter(descriptor: bytesName, labels: [("direction", "from_viewer")])
        )
        let carriedName = name(
            "screen_legs_carried", "total",
            "Screen legs (an agent's or a viewer's) that reached this replica with another replica's ticket, carried "
                + "to that replica, by leg and outcome.")
        legsCarried = Dictionary(
            uniqueKeysWithValues: ["agent", "viewer"].flatMap { leg in
                ["carried", "failed"].map { outcome in
                    (
                        "\(leg) \(outcome)",
                        registry.makeCounter(descriptor: carriedName, labels: [("leg", leg), ("outcome", outcome)])
                    )
                }
            })
        auditWriteSeconds = registry.makeDurationHistogram(
            descriptor: name(
                "audit_write", "seconds", "Time from an event handed to the audit log to its commit (group commit)."),
            buckets: secondsBuckets)
        let queuedName = name(
            "audit_pending", "events",
            "Audit events not yet stored: waiting for the writer, or kept in the journal until the database is back.")
        auditQueued = (
            registry.makeGauge(descriptor: queuedName, labels: [("stage", "writer")]),
            registry.makeGauge(descriptor: queuedName, labels: [("stage", "journal")])
        )
        auditRefusals = registry.makeCounter(
            descriptor: name(
                "audit_refusals", "total",
                "Actions refused because the audit log could not record them (fail closed)."))
        let directoryName = name("directory_request", "seconds", "Directory (LDAP) requests, by operation.")
        directorySeconds = Dictionary(
            uniqueKeysWithValues: Self.directoryOperations.map {
                (
                    $0,
                    registry.makeDurationHistogram(
                        descriptor: directoryName, labels: [("operation", $0)], buckets: secondsBuckets)
                )
            })
        let directoryErrorName = name(
            "directory_errors", "total",
            "Directory requests that failed (unreachable, refused, timed out), by operation.")
        directoryErrors = Dictionary(
            uniqueKeysWithValues: Self.directoryOperations.map {
                ($0, registry.makeCounter(descriptor: directoryErrorName, labels: [("operation", $0)]))
            })
        policyVersion = registry.makeGauge(
            descriptor: name("policy_active_version", "", "The version of the active policy; 0 before any is applied."))
        let invitationName = name("invitation_events", "total", "Invitation events, by event.")
        invitations = Dictionary(
            uniqueKeysWithValues: Self.invitationEvents.map {
                (
                    $0,
                    registry.makeCounter(
                        descriptor: invitationName,
                        labels: [("event", String($0.rawValue.dropFirst("invitation.".count)))])
                )
            })
        let chatName = name("chat_lines", "total", "Chat lines delivered, by who wrote them.")
        chatLines = Dictionary(
            uniqueKeysWithValues: ChatMessage.Author.allCases.map {
                ($0, registry.makeCounter(descriptor: chatName, labels: [("from", $0.rawValue)]))
            })
    }

    private static func label(_ answer: ConsentAnswer) -> String {
        answer == .granted ? "accepted" : "declined"
    }

    // MARK: What is open now

    /// Where a scrape reads what is open now.
    public func read(_ source: @escaping @Sendable () -> Current) {
        current.withLock { $0 = source }
    }

    /// The metrics in the Prometheus text format, with what is open now read first.
    public func emit() -> [UInt8] {
        if let now = current.withLock({ $0 })?() {
            agents.set(Int64(now.agentsConnected))
            sessionsActive.view.set(Int64(now.sessionsViewing))
            sessionsActive.control.set(Int64(now.sessionsControlling))
            screensOpen.set(Int64(now.screensOpen))
            auditQueued.writer.set(Int64(now.auditQueued))
            auditQueued.journal.set(Int64(now.auditJournaled))
            policyVersion.set(Int64(now.policyVersion))
        }
        return registry.emitToBuffer()
    }

    // MARK: What happened

    /// A session took `step` on `input`; `offeredAt` is when its offer was made, `now` the step's time.
    func stepped(
        _ input: SessionStateMachine.Input, _ step: SessionStateMachine.Step, offeredAt: AuditTimestamp,
        now: AuditTimestamp
    ) {
        switch input {
        case .consent(let answer):
            offers[answer == .granted ? .accepted : .declined]?.increment()
            let waited = Duration.microseconds(max(0, now.microseconds - offeredAt.microseconds))
            consentSeconds[answer]?.record(waited)
        case .controlAnswer(let answer):
            controlRequests[answer]?.increment()
        case .stopControl(let method):
            controlStops[method]?.increment()
        case .end(.consentTimeout):
            offers[.noAnswer]?.increment()
        case .delivered, .requestControl, .end:
            break
        }
        if case .ended(let reason) = step.state { sessionsEnded[reason]?.increment() }
    }

    /// Relayed screen bytes.
    func relayed(toViewer: Int, fromViewer: Int) {
        if toViewer > 0 { relayBytes.toViewer.increment(by: Int64(toViewer)) }
        if fromViewer > 0 { relayBytes.fromViewer.increment(by: Int64(fromViewer)) }
    }

    /// A screen leg `leg` ("agent" or "viewer") carried to another replica, or not (`carried` false: that replica
    /// could not be reached, showed another key, or refused the leg).
    func carried(leg: String, _ carried: Bool) {
        legsCarried["\(leg) \(carried ? "carried" : "failed")"]?.increment()
    }

    /// An audit event committed `waited` after it was handed over.
    func auditCommitted(after waited: Duration) {
        auditWriteSeconds.record(waited)
    }

    /// An action refused because its audit event could not be committed.
    func auditRefused() {
        auditRefusals.increment()
    }

    /// A directory request of `operation` that took `duration`, and whether it failed.
    public func directory(_ operation: DirectoryOperation, took duration: Duration, failed: Bool) {
        directorySeconds[operation]?.record(duration)
        if failed { directoryErrors[operation]?.increment() }
    }

    /// An event of the audit log, counted when it is one the metrics count: an offer refused (by policy, or for
    /// the machine's state), a consent answer turned away, a chat line, an invitation's events.
    func recorded(_ event: AuditEvent) {
        guard let type = AuditEventType(rawValue: event.name) else { return }
        switch type {
        case .offerDenied:
            offers[event.outcome == .denied ? .denied : .unavailable]?.increment()
        case .consentRejected:
            consentRejected.increment()
        case .chatMessage:
            guard case .string(let from) = event.details["from"], let author = ChatMessage.Author(rawValue: from)
            else { return }
            chatLines[author]?.increment()
        default:
            invitations[type]?.increment()
        }
    }
}
