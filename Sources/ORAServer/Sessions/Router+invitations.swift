import Foundation
import Hummingbird
import ORACore

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

extension Router<ORARequestContext> {
    /// Adds opening an invitation and proving its password.
    func addInvitationRoutes(sessions: SessionRouting, operators: OperatorService) {
        let api = group("api/v1/invitations").add(middleware: OperatorAuthenticationMiddleware(service: operators))

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
