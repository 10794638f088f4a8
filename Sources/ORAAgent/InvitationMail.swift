import Foundation
import NIOCore
public import ORACore

/// Has the enrolled server send this machine's invitations by e-mail, to the one address each names (the machine
/// signed it, so the server sends it nowhere else). The server sends the file and a link to the console; the
/// password stays here.
public struct InvitationMail: Sendable {
    private let state: AgentState

    public init(state: AgentState) {
        self.state = state
    }

    /// Sends `signed` (made for e-mail) through the enrolled server.
    /// - Returns: the address the server sent it to.
    /// - Throws: `AgentError.unreachable`, `.refused` with the server's reason (a recipient policy does not allow,
    ///   a mail server that refused), `.notEnrolled`.
    public func send(_ signed: SignedInvitation) async throws(AgentError) -> String {
        let enrollment = try state.load().enrollment
        // Sending takes as long as the mail server does; the server gives up on it within its own limit.
        let (status, data) = try await Enroller.post(
            server: enrollment.server, caFile: enrollment.caFile, path: "/agent/v1/invitations",
            body: signed.fileContent, timeout: .seconds(60))
        struct Answer: Decodable { var recipient: String }
        guard status == 201, let answer = try? JSONDecoder().decode(Answer.self, from: data) else {
            throw .refused(status: status, message: Enroller.message(in: data) ?? "unexpected answer")
        }
        return answer.recipient
    }
}
