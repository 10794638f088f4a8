import Foundation
import Logging
import ORACore
import ORAStore

/// What an authenticated agent says about its sessions: that an offer arrived, the person's signed answers (checked
/// against the offer and the machine's device key before they count), control taken back, the session ended, the
/// person's chat lines and whether their session window is on screen. A
/// message about a session of another machine is ignored; a consent that does not verify, or that comes from a
/// machine no longer enrolled with the key the offer was sent to, is turned away and recorded as `consent.rejected`.
struct AgentMessages: Sendable {
    let table: SessionTable
    let broker: SessionBroker
    /// Where an answer's machine is checked: still enrolled, with the key that signed it.
    let machines: MachineStore
    let clock: ServerClock
    let logger: Logger
    /// Where the machine's answers about its invitations go (none: they are dropped).
    var invitations: InvitationDesk? = nil

    /// Handles a message from the authenticated agent of `machine`.
    func handle(_ message: AgentProtocol.AgentMessage, from machine: String, source: String) async {
        let actor = AuditActor.machine(machine)
        switch message {
        case .hello, .authenticate:
            return
        case .offerReceived(let id):
            guard belongs(id, to: machine) else { return }
            _ = try? await broker.transition(id, .delivered, actor: actor, source: source)
        case .consent(let receipt):
            await handleConsent(receipt, from: machine, source: source)
        case .controlStopped(let id, let method):
            guard belongs(id, to: machine) else { return }
            _ = try? await broker.transition(
                id, .stopControl(method), actor: actor, source: source, details: ["how": .string(method.rawValue)])
        case .sessionEnded(let id):
            guard belongs(id, to: machine) else { return }
            _ = try? await broker.transition(id, .end(.noviceEnded), actor: actor, source: source)
        case .chat(let id, let text):
            guard belongs(id, to: machine) else { return }
            await broker.chat(id, text: text, fromPersonAt: machine, source: source)
        case .presence(let id, let presence):
            guard belongs(id, to: machine) else { return }
            await broker.presence(presence, in: id)
        case .invitationChallenge(let challenge):
            invitations?.machineReplied(.challenge(challenge), session: challenge.session, from: machine)
        case .invitationDecision(let decision):
            invitations?.machineReplied(.decision(decision), session: decision.session, from: machine)
        case .invitationReport(let signed, let status):
            await invitations?.record(signed, status: status, from: machine, source: source)
        }
    }

    private func handleConsent(_ receipt: ConsentReceipt, from machine: String, source: String) async {
        let id = receipt.session
        guard let live = table.live(id), live.offer.machine == machine else {
            await rejectConsent(receipt, machine: machine, source: source, reason: "unknown_session")
            return
        }
        let question: ConsentReceipt.Question
        let request: Int
        switch live.machine.state {
        case .offered, .awaitingConsent:
            (question, request) = (.session, 0)
        case .controlRequested:
            (question, request) = (.control, live.machine.controlRequests)
        default:
            await rejectConsent(receipt, machine: machine, source: source, reason: "no_question_pending")
            return
        }
        guard let key = try? DevicePublicKey.parse(live.machineKey) else {
            await rejectConsent(receipt, machine: machine, source: source, reason: "bad_signature")
            return
        }
        do throws(ConsentReceiptError) {
            try receipt.verify(answering: question, request: request, of: live.offer, with: key)
        } catch {
            await rejectConsent(receipt, machine: machine, source: source, reason: error.code)
            return
        }
        // The offer went to the key the agent proved when it connected, which the database was not asked for
        // then. A revocation or a re-key closes that connection; should the closing not have arrived here (another
        // server revoked it and could not reach this one), the answer is still refused.
        if receipt.answer == .granted, let refused = await enrollmentRefusal(of: machine, key: live.machineKey) {
            await rejectConsent(receipt, machine: machine, source: source, reason: refused)
            return
        }
        let input: SessionStateMachine.Input =
            question == .session ? .consent(receipt.answer) : .controlAnswer(receipt.answer)
        let details: [String: AuditValue] = [
            "receipt": receipt.auditValue,
            "public_key": .string(live.machineKey),
        ]
        do {
            _ = try await broker.transition(id, input, actor: .machine(machine), source: source, details: details)
        } catch {
            // Too late (the deadline passed) or not recorded: the answer does not count.
            logger.notice(
                "consent not applied", metadata: ["session.id": "\(id)", "reason": "\(error.message)"])
        }
    }

    /// Why an answer from `machine`, signed with `key`, may not give access now: `machine_revoked`,
    /// `key_replaced`, or `database_unavailable` when the database cannot say (nothing is given then either);
    /// `nil` when the machine is enrolled with that key.
    private func enrollmentRefusal(of machine: String, key: String) async -> String? {
        do {
            let enrollment = try await machines.enrollments(of: [machine])[machine]
            return MachineStore.Enrollment.change(since: key, to: enrollment)?.rawValue
        } catch {
            logger.warning(
                "could not check an answering machine's enrollment",
                metadata: ["machine": "\(machine)", "error": "\(DatabaseErrorDescription.describe(error))"])
            return "database_unavailable"
        }
    }

    private func rejectConsent(_ receipt: ConsentReceipt, machine: String, source: String, reason: String) async {
        logger.warning(
            "consent rejected",
            metadata: ["session.id": "\(receipt.session)", "machine": "\(machine)", "reason": "\(reason)"])
        // Nothing was allowed by it; the record must not be lost, nor wait.
        broker.audit.recordEventually([
            AuditEvent(
                .consentRejected, time: clock.timestamp, actor: .machine(machine), machine: machine,
                session: receipt.session, source: source,
                outcome: .denied,
                details: [
                    "reason": .string(reason), "question": .string(receipt.question.rawValue),
                    "request": .integer(Int64(receipt.request)), "answer": .string(receipt.answer.rawValue),
                ])
        ])
    }

    private func belongs(_ id: UUID, to machine: String) -> Bool {
        table.live(id)?.offer.machine == machine
    }
}
