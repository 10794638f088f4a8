import Foundation
import Logging
import ORACore
import ORADirectory
import ORAMail
import ORAStore

/// Sends the invitations a machine made for e-mail: to the one address the machine signed, when that address is a
/// directory user's or in a domain that policy allows, with the invitation attached and a link that opens it in the
/// console. The server learns nothing that opens it (the password stays on the machine); a send that fails is
/// audited and reported to the machine, which then revokes the invitation.
final class InvitationMailer: Sendable {
    private let settings: MailSettings?
    private let client: SMTPClient?
    private let intake: OfferIntake
    private let audit: SessionAudit
    private let clock: ServerClock
    private let logger: Logger

    init(settings: MailSettings?, intake: OfferIntake, audit: SessionAudit, clock: ServerClock, logger: Logger) {
        self.settings = settings
        self.client = settings.map { SMTPClient(settings: $0.smtp, logger: logger) }
        self.intake = intake
        self.audit = audit
        self.clock = clock
        self.logger = logger
    }

    /// Sends `signed` (made for e-mail) to its recipient.
    /// - Returns: the address it was sent to.
    /// - Throws: `SessionError.invitation` (not genuine, not the enrolled key, expired), `.wrongChannel`,
    ///   `.invalidRequest` (no recipient, too long a lifetime), `.mailNotConfigured`, `.recipientNotAllowed`,
    ///   `.mailNotSent`, `.directory`, `.auditUnavailable`.
    func send(_ signed: SignedInvitation, source: String) async throws(SessionError) -> MailAddress {
        do throws(InvitationError) {
            try signed.verify()
        } catch {
            throw .invitation(error)
        }
        let invitation = signed.invitation
        guard invitation.channel == .email else { throw .wrongChannel(made: invitation.channel, used: .email) }
        let (machine, facts): (MachineStore.Machine, MachineFacts)
        do throws(SessionError) {
            (machine, facts) = try await intake.facts(of: invitation.machine)
        } catch .machine(let error) where error.kind == .notFound {
            // A stranger learns nothing about which machines are enrolled.
            throw .invitation(.notEnrolledKey(machine: invitation.machine))
        }
        guard machine.publicKey == invitation.machineKey else {
            throw .invitation(.notEnrolledKey(machine: invitation.machine))
        }
        let now = clock.now()
        guard !invitation.hasExpired(at: now) else { throw .invitation(.expired) }
        // From here the machine is who it says: whatever becomes of its request is recorded.
        var details: [String: AuditValue] = [
            "invitation": .string(invitation.id.uuidString.lowercased()), "channel": .string("email"),
            "recipient": .text(invitation.recipient), "asked_by": .string(invitation.askedBy.account),
            "expires_at": .string(invitation.expiresAt), "password": .bool(invitation.password != nil),
        ]
        if let message = invitation.message { details["message"] = .text(message) }
        func refuse(_ error: SessionError, outcome: AuditOutcome) throws(SessionError) -> Never {
            details["refused"] = .string(error.code)
            details["reason"] = .text(error.message)
            // The refusal changes nothing, so it need not wait for the audit log: the journal keeps it until the log
            // takes it, and the machine is told now.
            audit.recordEventually([event(details, machine: machine.name, source: source, outcome: outcome)])
            throw error
        }
        let limits = intake.policies.active.set.invitationLimits(for: facts)
        if let refusal = limits.refusal(of: .init(invitation), machine: machine.name.uppercased()) {
            try refuse(.invitationNotAnswerable(refusal), outcome: .denied)
        }
        guard let text = invitation.recipient else {
            try refuse(
                .invalidRequest("the invitation names no recipient: make it with ora-agent invite --email ADDRESS"),
                outcome: .failure)
        }
        let recipient: MailAddress
        do {
            recipient = try MailAddress(text)
        } catch {
            try refuse(.invalidRequest(error.description), outcome: .failure)
        }
        guard let settings, let client else { try refuse(.mailNotConfigured, outcome: .failure) }
        do throws(SessionError) {
            if let person = try await allowedRecipient(recipient, domains: limits.mailDomains) {
                details["recipient_dn"] = .string(person.dn)
            }
        } catch {
            try refuse(error, outcome: error.kind == .forbidden ? .denied : .failure)
        }
        let mail = Self.message(
            signed, machine: machine.name, to: recipient, settings: settings, at: now,
            link: (settings.consoleURL ?? Self.origin(of: invitation.server)) + "/invitations/open#"
                + Self.base64URL(Self.compact(signed)))
        do throws(MailError) {
            try await client.send(mail)
        } catch {
            logger.warning(
                "an invitation could not be sent by e-mail",
                metadata: ["invitation.id": "\(invitation.id)", "error": "\(error)"])
            try refuse(.mailNotSent(error.description), outcome: .failure)
        }
        try await audit.record(event(details, machine: machine.name, source: source, outcome: .success))
        return recipient
    }

    private func event(
        _ details: [String: AuditValue], machine: String, source: String, outcome: AuditOutcome
    ) -> AuditEvent {
        AuditEvent(
            .invitationSent, time: clock.timestamp, actor: .machine(machine), machine: machine, source: source,
            outcome: outcome, details: details)
    }

    /// The directory user `recipient` belongs to, or `nil` for an address in a domain that policy allows.
    /// - Throws: `SessionError.recipientNotAllowed` for neither, `.directory` when the directory cannot say.
    private func allowedRecipient(
        _ recipient: MailAddress, domains: Set<String>
    ) async throws(SessionError) -> Operator? {
        let person: Operator?
        do {
            person = try await intake.directory.person(withMail: recipient.description)
        } catch {
            throw .directory(error)
        }
        if let person { return person }
        guard domains.contains(recipient.domain) else {
            throw .recipientNotAllowed(recipient.description, domains: domains.sorted())
        }
        return nil
    }

    /// The mail: who asks for help on which machine, their message, the link, and the file attached.
    static func message(
        _ signed: SignedInvitation, machine: String, to recipient: MailAddress, settings: MailSettings, at now: Date,
        link: String
    ) -> MailMessage {
        let invitation = signed.invitation
        let who = AuditText.escaped(invitation.askedBy.displayName)
        let name = machine.uppercased()
        var text =
            "\(who) (\(AuditText.escaped(invitation.askedBy.account))) asks you for remote assistance on \(name).\n"
        if let message = invitation.message { text += "\nTheir message: \(AuditText.escaped(message))\n" }
        text += """

            Open the invitation in the ora console:
            \(link)

            Or save the attached file and open it with:
                ora invitation open \(fileName(of: invitation))

            It is valid until \(Invitation.timeText(invitation.expiry ?? now)) (UTC).

            """
        text +=
            invitation.password == nil
            ? "It has no password.\n"
            : "It is protected by a password, which is not in this mail: call \(who) for it.\n"
        text += """
            \(name) checks the invitation and the password itself, and asks \(who) before you see the screen.
            If you did not expect this mail, do not open the invitation; tell your security team.
            """
        return MailMessage(
            from: settings.smtp.from, fromName: settings.smtp.fromName, to: recipient,
            subject: "\(who) asks for remote assistance on \(name)", text: text,
            attachments: [
                .init(
                    fileName: fileName(of: invitation), contentType: "application/vnd.ora.invitation+json",
                    content: signed.fileContent)
            ], date: now, messageID: invitation.id.uuidString.lowercased() + "@" + settings.smtp.from.domain)
    }

    /// `WS-0101-1a2b3c4d.orainvite`.
    static func fileName(of invitation: Invitation) -> String {
        invitation.machine.uppercased() + "-" + invitation.id.uuidString.lowercased().prefix(8) + ".orainvite"
    }

    /// The scheme, host and port of `server` (the address the machine enrolled with).
    private static func origin(of server: String) -> String {
        guard let url = URL(string: server), let scheme = url.scheme, let host = url.host else {
            return server.hasSuffix("/") ? String(server.dropLast()) : server
        }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost)" + (url.port.map { ":\($0)" } ?? "")
    }

    /// The invitation file as compact JSON, for the link: the signature covers the invitation's fields, not the
    /// file's spacing.
    static func compact(_ signed: SignedInvitation) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(signed)) ?? signed.fileContent
    }

    /// Base64 for a URL's fragment: `-` and `_` for `+` and `/`, no padding.
    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
