import Foundation
import NIOCore
public import ORACore

/// Sends this machine's invitations to the helpdesk's queue, where every helper whom policy allows to answer them
/// sees them at once. The server takes an invitation because this machine's enrolled key signed it, for the
/// helpdesk; it learns nothing that opens it (the password stays here).
public struct HelpdeskQueue: Sendable {
    /// Who may answer an invitation of this machine, as the server counted them when it arrived.
    public struct Presence: Sendable, Hashable, Decodable {
        /// Watching the queue now, and free.
        public var online: Int
        /// Watching the queue now, and helping someone in a session.
        public var busy: Int
        /// Logged in, but not watching the queue now.
        public var away: Int

        public init(online: Int, busy: Int, away: Int) {
            self.online = online
            self.busy = busy
            self.away = away
        }

        /// One sentence for the person at the machine.
        public var sentence: String {
            if online + busy == 0 {
                return away == 0
                    ? "Nobody who may help this machine is at the helpdesk right now.\n"
                        + "Your invitation waits there until it expires or you revoke it."
                    : "Nobody who may help this machine is watching the queue right now (\(Self.count(away)) away).\n"
                        + "Your invitation waits there until it expires or you revoke it."
            }
            var parts = ["\(online) online now"]
            if busy > 0 { parts.append("\(busy) busy in a session") }
            if away > 0 { parts.append("\(away) away") }
            return "Helpers who may help this machine: " + parts.joined(separator: ", ") + "."
        }

        private static func count(_ number: Int) -> String { number == 1 ? "1 helper" : "\(number) helpers" }
    }

    private let state: AgentState

    public init(state: AgentState) {
        self.state = state
    }

    /// Who may help this machine now, as the enrolled server counts them; asked with a short limit, as it is shown
    /// while the person decides.
    /// - Throws: `AgentError.unreachable`, `.refused`, `.notEnrolled`, `.state`.
    public func presence() async throws(AgentError) -> Presence {
        let (key, enrollment) = try state.load()
        let question: PresenceQuestion
        do {
            question = try PresenceQuestion(machine: enrollment.machine, at: Date(), signingWith: key)
        } catch {
            throw .state("cannot sign with the device key")
        }
        let (status, data) = try await Enroller.post(
            server: enrollment.server, caFile: enrollment.caFile, path: "/agent/v1/presence",
            body: (try? JSONEncoder().encode(question)) ?? Data(), timeout: .seconds(3))
        guard status == 200, let presence = try? JSONDecoder().decode(Presence.self, from: data) else {
            throw .refused(status: status, message: Enroller.message(in: data) ?? "unexpected answer")
        }
        return presence
    }

    /// Sends `signed` (made for the helpdesk) to the enrolled server.
    /// - Returns: who may answer it now.
    /// - Throws: `AgentError.unreachable`, `.refused` with the server's reason, `.notEnrolled`.
    public func send(_ signed: SignedInvitation) async throws(AgentError) -> Presence {
        let enrollment = try state.load().enrollment
        let (status, data) = try await Enroller.post(
            server: enrollment.server, caFile: enrollment.caFile, path: "/agent/v1/invitations",
            body: signed.fileContent, timeout: .seconds(10))
        struct Answer: Decodable { var presence: Presence }
        guard status == 200 || status == 201, let answer = try? JSONDecoder().decode(Answer.self, from: data) else {
            throw .refused(status: status, message: Enroller.message(in: data) ?? "unexpected answer")
        }
        return answer.presence
    }
}
