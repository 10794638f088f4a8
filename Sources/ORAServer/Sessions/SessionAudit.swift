import Logging
import ORACore
import ORAStore

/// How the sessions' events reach the audit log: an event that gives access is recorded before it takes effect, or
/// the action is refused; one that records what cannot be undone goes through the journal, never lost, never waited
/// for.
struct SessionAudit: Sendable {
    let writer: AuditWriter
    let journal: AuditJournal
    let logger: Logger
    /// Counts the events it counts (offers refused, answers turned away, chat lines, invitations).
    let metrics: ServerMetrics

    /// Records `event`, or refuses when the audit log cannot take it.
    /// - Throws: `SessionError.auditUnavailable`.
    func record(_ event: AuditEvent) async throws(SessionError) {
        do {
            try await writer.record(event)
            metrics.recorded(event)
        } catch {
            logger.error(
                "refusing an action that cannot be audited",
                metadata: ["audit.event": "\(event.name)", "error": "\(error.reason)"])
            throw .auditUnavailable
        }
    }

    /// Records `events` through the journal: for what happened and cannot be undone by refusing (access ended, a
    /// screen closed, input dropped, a forged answer turned away).
    func recordEventually(_ events: [AuditEvent]) {
        journal.record(events)
        for event in events { metrics.recorded(event) }
    }
}
