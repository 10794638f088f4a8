import Foundation
import Hummingbird
import NIOCore
import ORACore
import ORAStore

/// The JSON body of `POST /api/v1/invitations/open`.
struct InvitationOpenRequest: Decodable {
    /// The invitation file's content, as it is.
    var invitation: SignedInvitation
    var mode: AccessMode?
    var ticket: String?
    var reason: String?
}

/// The JSON body of `POST /api/v1/invitations/proof`.
struct InvitationProofRequest: Decodable {
    var session: UUID
    var machine: String
    var proof: InvitationPassword.SealedProof
}

/// What opening an invitation answers: the session it opens, and the machine's challenge when a password is needed
/// (else the offer already made).
struct InvitationOpeningDocument: Encodable {
    var session: UUID
    var machine: String
    var invitation: UUID
    var challenge: InvitationPassword.Challenge?
    var password: InvitationPassword.Parameters?
    var offered: SessionSnapshot?
}

/// An invitation in the helpdesk's queue, as helpers see it.
struct QueuedInvitationDocument: Encodable {
    var id: UUID
    var machine: String
    /// Who asked, by name; their account on the machine.
    var askedBy: String
    var askedByAccount: String
    var message: String?
    var createdAt: Date
    var expiresAt: Date
    var postedAt: Date
    /// `open`, `taken` or `withdrawn`.
    var state: String
    var takenBy: String?
    var takenAt: Date?
    var withdrawnReason: String?
    /// Whether opening it needs the password the person set.
    var password: Bool
    /// The invitation file, for its taker only.
    var file: SignedInvitation?

    init(_ item: InvitationQueue.Item, withFile: Bool = false) {
        let entry = item.entry
        id = entry.id
        machine = entry.machine
        askedBy = entry.askedBy
        askedByAccount = item.signed.invitation.askedBy.account
        message = entry.message
        createdAt = entry.createdAt
        expiresAt = entry.expiresAt
        postedAt = entry.postedAt
        state = entry.state
        takenBy = entry.takenByName
        takenAt = entry.takenAt
        withdrawnReason = entry.withdrawnReason
        password = item.signed.invitation.password != nil
        file = withFile ? item.signed : nil
    }

    enum CodingKeys: String, CodingKey {
        case id, machine, message, state, password, file
        case askedBy = "asked_by"
        case askedByAccount = "asked_by_account"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case postedAt = "posted_at"
        case takenBy = "taken_by"
        case takenAt = "taken_at"
        case withdrawnReason = "withdrawn_reason"
    }
}

/// The helpdesk's queue, as `GET /api/v1/invitations` answers it.
struct InvitationQueueDocument: Encodable {
    var invitations: [QueuedInvitationDocument]
}

/// What the machine hears when it sends an invitation to the helpdesk: whether it is new there, and who may answer
/// it now.
struct InvitationPostedDocument: Encodable {
    var invitation: UUID
    var new: Bool
    /// For the helpdesk's queue: who may answer it now.
    var presence: InvitationQueue.Presence?
    /// For e-mail: the address it was sent to.
    var recipient: String?
}

extension Router<ORARequestContext> {
    /// Adds opening an invitation and proving its password, the helpdesk's queue, and sending an invitation to it
    /// (`POST /agent/v1/invitations`, authenticated by the machine's signature on the invitation).
    func addInvitationRoutes(
        sessions: SessionRouting, queue: InvitationQueue, mailer: InvitationMailer, operators: OperatorService
    ) {
        // The machine sends an invitation it signed, for the helpdesk or for e-mail: the signature by its enrolled
        // key is what authenticates it. Sending the same one to the helpdesk again changes nothing; the channel and
        // the recipient are signed, so the server sends it nowhere else.
        post("agent/v1/invitations") { request, context -> Response in
            let signed: SignedInvitation
            do {
                signed = try await request.decode(as: SignedInvitation.self, context: context)
            } catch {
                throw SessionError.invitation(.unreadable("the request holds no ora invitation (ora-invitation/1)"))
            }
            if signed.invitation.channel == .email {
                let recipient = try await mailer.send(signed, source: context.sourceAddress)
                return try Response.encodedJSON(
                    InvitationPostedDocument(
                        invitation: signed.invitation.id, new: true, recipient: recipient.description),
                    status: .created)
            }
            let (new, presence) = try await queue.post(signed, source: context.sourceAddress)
            return try Response.encodedJSON(
                InvitationPostedDocument(invitation: signed.invitation.id, new: new, presence: presence),
                status: new ? .created : .ok)
        }

        // The machine asks who may help it now, signed with its key, for its person to see before they send.
        post("agent/v1/presence") { request, context -> Response in
            let question = try await request.decodeJSON(
                PresenceQuestion.self, context: context, expected: #"{"machine", "time", "signature"}"#)
            return try Response.encodedJSON(try await queue.presence(asked: question))
        }

        let api = group("api/v1/invitations").add(middleware: OperatorAuthenticationMiddleware(service: operators))

        // The queue: the open invitations this helper may answer.
        api.get { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            return try Response.encodedJSON(
                InvitationQueueDocument(invitations: try await queue.open(for: identity).map { .init($0) }))
        }

        // Server-sent events: the open invitations this helper may answer, then each one posted, taken or
        // withdrawn, as it happens; while it is open, the helper counts as watching the queue.
        let slots = EventStreamSlots()
        api.get("events") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            guard let session = context.session, let slot = slots.take(for: identity.person.dn) else {
                throw APIError(
                    .tooManyRequests, code: "too_many_streams",
                    message: "you watch the queue \(slots.perOperator) times at once already; close one first",
                    headers: [.retryAfter: "5"])
            }
            let stream = try await queue.watch(for: identity, session: session.id)
            // A comment at once, so that the helper's client knows it watches before anything is posted.
            return Response.eventStream(stream, opening: ": watching\n\n", holding: slot) { item, encoder in
                ("invitation", try encoder.encode(QueuedInvitationDocument(item)))
            }
        }

        // Take an invitation from the queue: the first helper gets it, with its file to open.
        api.post(":id/take") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let item = try await queue.take(
                try context.id(of: "invitation"), by: identity, source: context.sourceAddress)
            return try Response.encodedJSON(QueuedInvitationDocument(item, withFile: true))
        }

        // Open an invitation from its file: the server's checks, then the machine's.
        api.post("open") { request, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let body: InvitationOpenRequest
            do {
                body = try await request.decode(as: InvitationOpenRequest.self, context: context)
            } catch {
                throw SessionError.invitation(.unreadable("the request holds no ora invitation (ora-invitation/1)"))
            }
            do throws(InvitationError) {
                try body.invitation.verify()
            } catch {
                throw SessionError.invitation(error)
            }
            try await queue.checkTaken(body.invitation, by: identity)
            let opening = try await sessions.openInvitation(
                body.invitation, mode: body.mode ?? .view, ticket: body.ticket, reason: body.reason, by: identity,
                source: context.sourceAddress)
            return try Response.encodedJSON(
                InvitationOpeningDocument(
                    session: opening.session, machine: opening.machine, invitation: body.invitation.invitation.id,
                    challenge: opening.challenge,
                    password: opening.challenge == nil ? nil : body.invitation.invitation.password,
                    offered: opening.offered),
                status: .created)
        }

        // The helper's sealed answer to the machine's challenge.
        api.post("proof") { request, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let body = try await request.decodeJSON(
                InvitationProofRequest.self, context: context,
                expected: #"{"session", "machine", "proof": {"ephemeral_key", "box"}}"#)
            let offered = try await sessions.proveInvitation(
                body.proof, session: body.session, machine: body.machine, by: identity, source: context.sourceAddress)
            return try Response.encodedJSON(offered, status: .created)
        }
    }
}
