public import Foundation

/// The messages between an agent and the server, one JSON object per WebSocket text frame, each with a `type`.
/// The agent speaks first (`hello`), the server challenges, the agent proves its device key, and from then on
/// the server sends offers and control requests and the agent sends the novice's signed answers. `Docs/Protocol.md`
/// describes the exchange.
public enum AgentProtocol {
    /// The largest frame either side accepts; anything larger closes the connection.
    public static let maximumFrameSize = 64 * 1024
    /// The longest agent-reported text (operating system, agent version) that is kept.
    public static let maximumReportedTextLength = 200

    /// Whether agent-reported text may be kept: 1 to `maximumReportedTextLength` characters, none of them a
    /// control character (no forged log lines, no terminal escapes).
    public static func isReportable(_ text: String) -> Bool {
        !text.isEmpty && text.count <= maximumReportedTextLength
            && !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// What the agent sends.
    public enum AgentMessage: Sendable, Hashable {
        /// The first message: who the agent says it is.
        case hello(machine: String, agentVersion: String, operatingSystem: String)
        /// The answer to the server's challenge (`AgentAuthentication.sign(with:)`).
        case authenticate(signature: String)
        /// The offer arrived and the novice is being asked.
        case offerReceived(session: UUID)
        /// The novice answered the offer or a control request.
        case consent(ConsentReceipt)
        /// The novice (or the agent on the helper's behalf) took control back.
        case controlStopped(session: UUID, method: ControlStopMethod)
        /// The novice ended the session.
        case sessionEnded(session: UUID)
        /// The person at the machine wrote a chat line (checked by the server as a `ChatLine`).
        case chat(session: UUID, text: String)
        /// Whether the person has the session window on screen, and is typing.
        case presence(session: UUID, presence: PersonPresence)
        /// The machine will check a password for the invitation: answer this challenge.
        case invitationChallenge(InvitationPassword.Challenge)
        /// What the machine decided about a use of its invitation, signed.
        case invitationDecision(InvitationDecision)
        /// What became of one of the machine's invitations, for the record: `created`, `revoked` or `expired`.
        case invitationReport(SignedInvitation, status: String)
    }

    /// What the server sends.
    public enum ServerMessage: Sendable, Hashable {
        /// Prove the device key: sign this nonce with the machine's and the server's names.
        case challenge(nonce: String)
        /// The agent is authenticated and the machine is online.
        case welcome(machine: String)
        /// A helper offers assistance: ask the novice.
        case offer(Offer)
        /// The helper asks for control: ask the novice again; `request` numbers the question.
        case controlRequest(session: UUID, request: Int)
        /// The helper gave control back, or the server ended it: drop input at once.
        case controlRevoked(session: UUID)
        /// The helper attached a viewer: start the screen backend and open a screen connection for the session to
        /// the server's relay `port`, presenting `ticket` (single use, valid for `ScreenTickets.lifetime`).
        case openScreen(session: UUID, ticket: String, port: Int)
        /// The session is over.
        case endSession(session: UUID, reason: SessionEndReason)
        /// A chat line of the session, recorded and numbered: the helper's, or the person's own line confirmed.
        case chat(session: UUID, message: ChatMessage)
        /// The person's oldest unconfirmed chat line was not delivered, and why.
        case chatRefused(session: UUID, reason: String)
        /// The server refuses something; the connection may be closed after it.
        case error(code: String, message: String)
        /// A helper opens one of the machine's invitations for `session`: decide whether it may be used, and ask for
        /// the password if it has one.
        case openInvitation(invitation: UUID, session: UUID, operatorDN: String)
        /// The helper's answer to the machine's challenge, sealed to the device key.
        case invitationProof(challenge: InvitationPassword.Challenge, proof: InvitationPassword.SealedProof)
        /// The report of `status` for `invitation` is recorded: the agent need not send it again.
        case invitationRecorded(invitation: UUID, status: String)
    }

    /// A frame that is not a valid message.
    public struct DecodingError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What was wrong, for the log; it never repeats the frame's content.
        public var description: String

        /// Creates the error.
        public init(_ description: String) {
            self.description = description
        }
    }

    /// `message` as a frame.
    public static func encode(_ message: AgentMessage) -> Data {
        try! JSONEncoder.sorted.encode(AgentFrame(message))
    }

    /// `message` as a frame.
    public static func encode(_ message: ServerMessage) -> Data {
        try! JSONEncoder.sorted.encode(ServerFrame(message))
    }

    /// The agent's message in `frame`.
    /// - Throws: `DecodingError` for a frame that is too large, not JSON, of an unknown type, or missing a field.
    public static func decodeAgentMessage(_ frame: some Collection<UInt8>) throws(DecodingError) -> AgentMessage {
        let message = try decode(AgentFrame.self, from: frame).message
        if case .hello(let machine, let version, let system) = message {
            for (name, text) in [("machine", machine), ("agent_version", version), ("os", system)]
            where !isReportable(text) {
                throw DecodingError(
                    "'\(name)' must be 1 to \(maximumReportedTextLength) characters without control characters")
            }
        }
        return message
    }

    /// The server's message in `frame`.
    /// - Throws: `DecodingError` for a frame that is too large, not JSON, of an unknown type, or missing a field.
    public static func decodeServerMessage(_ frame: some Collection<UInt8>) throws(DecodingError) -> ServerMessage {
        try decode(ServerFrame.self, from: frame).message
    }

    private static func decode<Frame: Decodable>(
        _ type: Frame.Type, from frame: some Collection<UInt8>
    ) throws(DecodingError) -> Frame {
        guard frame.count <= maximumFrameSize else {
            throw DecodingError("the frame has \(frame.count) bytes, more than \(maximumFrameSize)")
        }
        do {
            return try JSONDecoder().decode(Frame.self, from: Data(frame))
        } catch let error as DecodingError {
            throw error
        } catch Swift.DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw DecodingError("the frame is not a JSON object")
        } catch Swift.DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw DecodingError("the frame is not a JSON object")
        } catch Swift.DecodingError.keyNotFound(let key, _) {
            throw DecodingError("the message has no '\(key.stringValue)'")
        } catch Swift.DecodingError.typeMismatch(_, let context), Swift.DecodingError.valueNotFound(_, let context) {
            throw DecodingError("'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch Swift.DecodingError.dataCorrupted(let context) {
            throw DecodingError("'\(context.codingPath.map(\.stringValue).joined(separator: "."))' is not valid")
        } catch {
            throw DecodingError("the frame is not a valid message")
        }
    }
}

/// The frames as JSON: `{"type": "...", ...fields}`.
private enum FrameKey: String, CodingKey {
    case type, machine, agentVersion = "agent_version", operatingSystem = "os", signature, session, receipt, method
    case nonce, offer, request, reason, code, message, ticket, port, text, window, typing, invitation, challenge
    case decision, proof, status
    case operatorDN = "operator_dn"
}

private struct AgentFrame: Codable {
    var message: AgentProtocol.AgentMessage

    init(_ message: AgentProtocol.AgentMessage) {
        self.message = message
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FrameKey.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "hello":
            message = .hello(
                machine: try container.decode(String.self, forKey: .machine),
                agentVersion: try container.decode(String.self, forKey: .agentVersion),
                operatingSystem: try container.decode(String.self, forKey: .operatingSystem))
        case "authenticate": message = .authenticate(signature: try container.decode(String.self, forKey: .signature))
        case "offer_received": message = .offerReceived(session: try container.decode(UUID.self, forKey: .session))
        case "consent": message = .consent(try container.decode(ConsentReceipt.self, forKey: .receipt))
        case "control_stopped":
            message = .controlStopped(
                session: try container.decode(UUID.self, forKey: .session),
                method: try container.decode(ControlStopMethod.self, forKey: .method))
        case "session_ended": message = .sessionEnded(session: try container.decode(UUID.self, forKey: .session))
        case "chat":
            message = .chat(
                session: try container.decode(UUID.self, forKey: .session),
                text: try container.decode(String.self, forKey: .text))
        case "presence":
            message = .presence(
                session: try container.decode(UUID.self, forKey: .session),
                presence: PersonPresence(
                    window: try container.decode(Bool.self, forKey: .window),
                    typing: try container.decode(Bool.self, forKey: .typing)))
        case "invitation_challenge":
            message = .invitationChallenge(try container.decode(InvitationPassword.Challenge.self, forKey: .challenge))
        case "invitation_decision":
            message = .invitationDecision(try container.decode(InvitationDecision.self, forKey: .decision))
        case "invitation_report":
            message = .invitationReport(
                try container.decode(SignedInvitation.self, forKey: .invitation),
                status: try container.decode(String.self, forKey: .status))
        default: throw AgentProtocol.DecodingError("unknown message type from the agent")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FrameKey.self)
        switch message {
        case .hello(let machine, let version, let system):
            try container.encode("hello", forKey: .type)
            try container.encode(machine, forKey: .machine)
            try container.encode(version, forKey: .agentVersion)
            try container.encode(system, forKey: .operatingSystem)
        case .authenticate(let signature):
            try container.encode("authenticate", forKey: .type)
            try container.encode(signature, forKey: .signature)
        case .offerReceived(let session):
            try container.encode("offer_received", forKey: .type)
            try container.encode(session, forKey: .session)
        case .consent(let receipt):
            try container.encode("consent", forKey: .type)
            try container.encode(receipt, forKey: .receipt)
        case .controlStopped(let session, let method):
            try container.encode("control_stopped", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(method, forKey: .method)
        case .sessionEnded(let session):
            try container.encode("session_ended", forKey: .type)
            try container.encode(session, forKey: .session)
        case .chat(let session, let text):
            try container.encode("chat", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(text, forKey: .text)
        case .presence(let session, let presence):
            try container.encode("presence", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(presence.window, forKey: .window)
            try container.encode(presence.typing, forKey: .typing)
        case .invitationChallenge(let challenge):
            try container.encode("invitation_challenge", forKey: .type)
            try container.encode(challenge, forKey: .challenge)
        case .invitationDecision(let decision):
            try container.encode("invitation_decision", forKey: .type)
            try container.encode(decision, forKey: .decision)
        case .invitationReport(let invitation, let status):
            try container.encode("invitation_report", forKey: .type)
            try container.encode(invitation, forKey: .invitation)
            try container.encode(status, forKey: .status)
        }
    }
}

private struct ServerFrame: Codable {
    var message: AgentProtocol.ServerMessage

    init(_ message: AgentProtocol.ServerMessage) {
        self.message = message
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: FrameKey.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "challenge": message = .challenge(nonce: try container.decode(String.self, forKey: .nonce))
        case "welcome": message = .welcome(machine: try container.decode(String.self, forKey: .machine))
        case "offer": message = .offer(try container.decode(Offer.self, forKey: .offer))
        case "control_request":
            message = .controlRequest(
                session: try container.decode(UUID.self, forKey: .session),
                request: try container.decode(Int.self, forKey: .request))
        case "control_revoked": message = .controlRevoked(session: try container.decode(UUID.self, forKey: .session))
        case "open_screen":
            message = .openScreen(
                session: try container.decode(UUID.self, forKey: .session),
                ticket: try container.decode(String.self, forKey: .ticket),
                port: try container.decode(Int.self, forKey: .port))
        case "end_session":
            message = .endSession(
                session: try container.decode(UUID.self, forKey: .session),
                reason: try container.decode(SessionEndReason.self, forKey: .reason))
        case "chat":
            message = .chat(
                session: try container.decode(UUID.self, forKey: .session),
                message: try container.decode(ChatMessage.self, forKey: .message))
        case "chat_refused":
            message = .chatRefused(
                session: try container.decode(UUID.self, forKey: .session),
                reason: try container.decode(String.self, forKey: .reason))
        case "error":
            message = .error(
                code: try container.decode(String.self, forKey: .code),
                message: try container.decode(String.self, forKey: .message))
        case "open_invitation":
            message = .openInvitation(
                invitation: try container.decode(UUID.self, forKey: .invitation),
                session: try container.decode(UUID.self, forKey: .session),
                operatorDN: try container.decode(String.self, forKey: .operatorDN))
        case "invitation_proof":
            message = .invitationProof(
                challenge: try container.decode(InvitationPassword.Challenge.self, forKey: .challenge),
                proof: try container.decode(InvitationPassword.SealedProof.self, forKey: .proof))
        case "invitation_recorded":
            message = .invitationRecorded(
                invitation: try container.decode(UUID.self, forKey: .invitation),
                status: try container.decode(String.self, forKey: .status))
        default: throw AgentProtocol.DecodingError("unknown message type from the server")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FrameKey.self)
        switch message {
        case .challenge(let nonce):
            try container.encode("challenge", forKey: .type)
            try container.encode(nonce, forKey: .nonce)
        case .welcome(let machine):
            try container.encode("welcome", forKey: .type)
            try container.encode(machine, forKey: .machine)
        case .offer(let offer):
            try container.encode("offer", forKey: .type)
            try container.encode(offer, forKey: .offer)
        case .controlRequest(let session, let request):
            try container.encode("control_request", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(request, forKey: .request)
        case .controlRevoked(let session):
            try container.encode("control_revoked", forKey: .type)
            try container.encode(session, forKey: .session)
        case .openScreen(let session, let ticket, let port):
            try container.encode("open_screen", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(ticket, forKey: .ticket)
            try container.encode(port, forKey: .port)
        case .endSession(let session, let reason):
            try container.encode("end_session", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(reason, forKey: .reason)
        case .chat(let session, let message):
            try container.encode("chat", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(message, forKey: .message)
        case .chatRefused(let session, let reason):
            try container.encode("chat_refused", forKey: .type)
            try container.encode(session, forKey: .session)
            try container.encode(reason, forKey: .reason)
        case .error(let code, let message):
            try container.encode("error", forKey: .type)
            try container.encode(code, forKey: .code)
            try container.encode(message, forKey: .message)
        case .openInvitation(let invitation, let session, let operatorDN):
            try container.encode("open_invitation", forKey: .type)
            try container.encode(invitation, forKey: .invitation)
            try container.encode(session, forKey: .session)
            try container.encode(operatorDN, forKey: .operatorDN)
        case .invitationProof(let challenge, let proof):
            try container.encode("invitation_proof", forKey: .type)
            try container.encode(challenge, forKey: .challenge)
            try container.encode(proof, forKey: .proof)
        case .invitationRecorded(let invitation, let status):
            try container.encode("invitation_recorded", forKey: .type)
            try container.encode(invitation, forKey: .invitation)
            try container.encode(status, forKey: .status)
        }
    }
}

extension JSONEncoder {
    /// An encoder with sorted keys, so frames are stable for logs and tests.
    fileprivate static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
