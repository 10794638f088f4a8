import Foundation
import Logging
import ORACore

/// Chat between the helper and the person at the machine, and what the person's agent says of them.
///
/// A line is checked (`ChatLine`), counted against its side's rate, and recorded as `chat.message` before anyone
/// sees it: a line the audit log cannot take is not delivered (fail closed, as for every action). Then it is
/// numbered and given, in one step, to the session's watchers here; then to the agent (which shows the helper's
/// lines, and confirms the person's own) and, queued (`ChatCopies`), to the other replicas' watchers.
extension SessionBroker {
    /// A chat line from the session's helper.
    /// - Returns: the line as delivered.
    /// - Throws: `SessionError.unknownSession` for a session the operator cannot see, `.onlyTheHelperMayChat`,
    ///   `.chatNotOpen`, `.invalidChatLine`, `.tooManyChatLines`, `.auditUnavailable`.
    func chat(
        _ id: UUID, text: String, by identity: OperatorService.Identity, source: String
    ) async throws(SessionError) -> ChatMessage {
        let live = try table.visible(id, to: identity)
        guard live.offer.helper.dn == identity.person.dn else { throw .onlyTheHelperMayChat }
        let message = try await deliver(
            text, in: id, from: .helper, name: live.offer.helper.displayName,
            actor: .operator(dn: identity.person.dn, account: identity.person.account), source: source)
        _ = await links.send(.chat(session: id, message: message), to: live.offer.machine)
        chatCopies?.publish(message, of: id)
        return message
    }

    /// A chat line from the person at `machine`, whose agent is told the line as delivered, or why it was not.
    func chat(_ id: UUID, text: String, fromPersonAt machine: String, source: String) async {
        do throws(SessionError) {
            let message = try await deliver(
                text, in: id, from: .person, name: machine.uppercased(), actor: .machine(machine), source: source)
            _ = await links.send(.chat(session: id, message: message), to: machine)
            chatCopies?.publish(message, of: id)
        } catch {
            logger.notice(
                "a chat line from the machine was not delivered",
                metadata: ["session.id": "\(id)", "reason": "\(error.code)"])
            _ = await links.send(.chatRefused(session: id, reason: error.message), to: machine)
        }
    }

    /// Notes what the person's agent says of them (the session window on screen, typing) and tells the watchers.
    func presence(_ presence: PersonPresence, in id: UUID) async {
        guard let live = table.setPresence(presence, of: id) else { return }
        for watcher in table.announce(id, ending: false, with: live, at: clock.now()) { watcher.finish() }
        await publish(live, id: id)
    }

    private func deliver(
        _ text: String, in id: UUID, from author: ChatMessage.Author, name: String, actor: AuditActor,
        source: String
    ) async throws(SessionError) -> ChatMessage {
        guard let live = table.live(id) else { throw .chatNotOpen(state: "ended") }
        guard live.machine.state.isActive else { throw .chatNotOpen(state: live.machine.state.name) }
        do throws(ChatLineError) {
            _ = try ChatLine(text)
        } catch {
            throw .invalidChatLine(error)
        }
        let now = clock.now()
        if case .limited(_, let retryAfter) = table.admitChat(id, from: author, at: now) {
            throw .tooManyChatLines(retryAfter: retryAfter)
        }
        try await audit.record(
            AuditEvent(
                .chatMessage, time: clock.timestamp, actor: actor, machine: live.offer.machine, session: id,
                source: source, policy: .init(version: live.offer.policyVersion, names: live.offer.policies),
                outcome: .success,
                details: ChatMessage.auditDetails(from: author, name: name, text: text, recording: chatRecording)))
        guard
            let (message, _) = table.deliverChat(
                id,
                { sequence in
                    ChatMessage(sequence: sequence, from: author, name: name, text: text, at: now)
                })
        else { throw .chatNotOpen(state: "ended") }
        return message
    }
}
