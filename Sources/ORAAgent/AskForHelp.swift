public import Foundation
public import ORACore

#if canImport(Glibc)
import Glibc
#endif

/// The person running a command on the machine, as the machine knows them.
public enum LocalUser {
    /// The account and, from the password database's comment field, the name.
    public static func current() -> Invitation.Person {
        guard let entry = getpwuid(geteuid()) else {
            return .init(account: "uid \(geteuid())", displayName: "uid \(geteuid())")
        }
        let account = String(cString: entry.pointee.pw_name)
        let gecos = entry.pointee.pw_gecos.map { String(cString: $0) } ?? ""
        let name = gecos.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return .init(account: account, displayName: name.isEmpty ? account : name)
    }

    /// `date` in this machine's time zone, as people read it: "6 Dec 2026 at 15:30 CET".
    public static func localTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB")
        formatter.dateFormat = "d MMM yyyy 'at' HH:mm zzz"
        return formatter.string(from: date)
    }
}

extension InvitationStore.Record {
    /// How it was sent, as the person reads it: "to the helpdesk", "e-mailed to lena.wolf@corp.example".
    public var sentText: String {
        switch invitation.channel {
        case .helpdesk: "to the helpdesk"
        case .email: "e-mailed to " + AuditText.escaped(invitation.recipient ?? "?")
        case .file: "saved as a file"
        }
    }

    /// What became of the invitation, as the person reads it: "open until 6 Dec 2026 at 16:29 CET", "used by …".
    public func statusText(at now: Date) -> String {
        let expiry = invitation.expiry.map(LocalUser.localTime) ?? "?"
        func when(_ text: String?) -> String { text.flatMap(Invitation.time).map(LocalUser.localTime) ?? "?" }
        return switch status(at: now) {
        case .open: "open until \(expiry)"
        case .opened:
            "open until \(expiry); opened by \(AuditText.escaped(openedBy ?? "?"))"
                + (failures > 0 ? ", \(failures) wrong password(s)" : "")
        case .used: "used by \(AuditText.escaped(usedBy ?? "?")) at \(when(usedAt))"
        case .expired: "expired at \(expiry)"
        case .revoked: "revoked at \(when(revokedAt))"
        case .locked: "locked after \(failures) wrong passwords, last by \(AuditText.escaped(openedBy ?? "?"))"
        }
    }
}

/// "Ask for help" on the person's desktop, in zenity's dialogs (Debian's `zenity`): the invitations made so far with
/// what became of them, revoking one, and making a new one — what it is about, how long it stays valid, a password
/// typed twice, and whether it goes to the helpdesk's queue, by e-mail (to whom) or is saved as a file (and where).
/// The same store and rules as `ora-agent invite` and `ora-agent invitations`.
public struct AskForHelp: Sendable {
    /// The lifetimes offered, as shown and as durations.
    static let lifetimes: [(String, Duration)] = [
        ("1 hour", .seconds(3600)), ("30 minutes", .seconds(1800)), ("4 hours", .seconds(4 * 3600)),
        ("1 day", .seconds(86_400)),
    ]
    /// Separates the fields of zenity's form: a character nobody types.
    static let separator = "\u{1E}"

    let store: InvitationStore
    let helpdesk: HelpdeskQueue
    let mail: InvitationMail
    let zenity: String
    /// Where the file is proposed to be saved.
    let folder: String

    /// The dialogs for the machine whose state is `state`.
    public init(state: AgentState, zenity: String = "/usr/bin/zenity", folder: String) {
        self.store = InvitationStore(state: state)
        self.helpdesk = HelpdeskQueue(state: state)
        self.mail = InvitationMail(state: state)
        self.zenity = zenity
        self.folder = folder
    }

    /// Shows the invitations (if any) and acts on what the person chooses, until they close the list.
    public func run() async throws(AgentError) {
        while true {
            let records = try store.records()
            // The first time, the form at once; once there is one, the list, to see what became of it.
            guard !records.isEmpty else {
                guard try await makeInvitation() != nil else { return }
                continue
            }
            let now = Date()
            var rows: [String] = []
            for record in records {
                rows += [
                    InvitationStore.short(record.invitation.id), record.sentText, record.statusText(at: now),
                    AuditText.escaped(record.invitation.message ?? ""),
                ]
            }
            let (status, chosen) = try await dialog(
                [
                    "--list", "--title=Ask for help", "--width=960", "--height=360",
                    "--text=Your requests for help. Select one to revoke it, or make a new invitation.",
                    "--column=Invitation", "--column=Sent", "--column=What became of it", "--column=Message",
                    "--ok-label=Revoke", "--cancel-label=Close", "--extra-button=_New invitation",
                ] + rows)
            if chosen == "_New invitation" || chosen == "New invitation" {
                _ = try await makeInvitation()
            } else if status == 0, !chosen.isEmpty {
                do throws(AgentError) {
                    let revoked = try store.revoke(chosen, at: Date())
                    _ = try await dialog([
                        "--info", "--no-markup", "--title=Invitation revoked",
                        "--text=Invitation \(InvitationStore.short(revoked.invitation.id)) is revoked: this computer "
                            + "refuses it from now on.",
                    ])
                } catch .invalidArgument(let why) {
                    _ = try await dialog([
                        "--error", "--no-markup", "--title=Ask for help", "--text=\(why.capitalizedFirst).",
                    ])
                }
            } else {
                return
            }
        }
    }

    /// The form, then where to save: makes one invitation, or none when the person cancels.
    /// - Returns: the invitation made, if any.
    func makeInvitation() async throws(AgentError) -> SignedInvitation? {
        var note = "Your helper will need the password: tell it to them by phone or in person, never in writing."
        while true {
            let (status, answer) = try await dialog([
                "--forms", "--title=Ask for help", "--width=520", "--separator=\(Self.separator)",
                "--text=\(note)", "--add-entry=What do you need help with?", "--add-combo=Valid for",
                "--combo-values=" + Self.lifetimes.map(\.0).joined(separator: "|"),
                "--add-password=Password (at least 8 characters)", "--add-password=The same password again",
                "--ok-label=Continue",
            ])
            guard status == 0 else { return nil }
            let fields = answer.components(separatedBy: Self.separator)
            guard fields.count == 4 else { return nil }
            let message = fields[0].trimmingCharacters(in: .whitespaces)
            if !message.isEmpty, (try? ChatLine(message)) == nil {
                note = "The message must be one line of up to 1,000 characters. Please try again."
                continue
            }
            guard fields[2] == fields[3] else {
                note = "The two passwords differ. Please type them again."
                continue
            }
            guard fields[2].count >= InvitationPassword.shortest else {
                note = "The password must have at least \(InvitationPassword.shortest) characters."
                continue
            }
            let lifetime = Self.lifetimes.first { $0.0 == fields[1] }?.1 ?? .seconds(3600)
            // Where it goes: the helpdesk's queue (the default), or a file the person hands over themselves; who is
            // there now, when the helpdesk can say.
            let present = (try? await helpdesk.presence()).map { "\n\n" + $0.sentence } ?? ""
            let (route, choice) = try await dialog([
                "--question", "--no-markup", "--title=Send your request", "--width=480",
                "--text=Send your request to the helpdesk?\nA helper who may help this computer takes it and calls "
                    + "you for the password.\(present)\n\nOr e-mail it to a colleague, or save it as a file to hand "
                    + "to a helper yourself.",
                "--ok-label=Send to the _helpdesk", "--extra-button=E-_mail it", "--extra-button=Save as a _file",
                "--cancel-label=Cancel",
            ])
            if route == 0 {
                return try await send(message: message, lifetime: lifetime, password: fields[2])
            }
            if choice == "E-_mail it" || choice == "E-mail it" {
                return try await mail(message: message, lifetime: lifetime, password: fields[2])
            }
            guard choice == "Save as a _file" || choice == "Save as a file" else { return nil }
            let (saved, path) = try await dialog([
                "--file-selection", "--save", "--confirm-overwrite", "--title=Save the invitation",
                "--filename=\(folder)/help-request.orainvite",
            ])
            guard saved == 0, !path.isEmpty else { return nil }
            let signed = try store.make(
                message: message.isEmpty ? nil : message, lifetime: lifetime, password: fields[2],
                askedBy: LocalUser.current(), at: Date())
            guard FileManager.default.createFile(atPath: path, contents: signed.fileContent) else {
                _ = try? store.revoke(signed.invitation.id.uuidString, at: Date())
                note = "The invitation could not be saved to \(path). Please choose another place."
                continue
            }
            _ = try await dialog([
                "--info", "--no-markup", "--title=Invitation saved", "--width=480",
                "--text=Your invitation is saved to \(path).\n\nSend the file to your helpdesk, and tell your helper "
                    + "the password by phone or in person — never with the file.\n\nIt is valid until "
                    + "\(LocalUser.localTime(signed.invitation.expiry ?? Date())). You will still be asked before "
                    + "anyone sees your screen.",
            ])
            return signed
        }
    }

    /// Makes an invitation for the helpdesk and sends it; says who may help now, or why it could not be sent.
    /// - Returns: the invitation sent, if it was.
    private func send(
        message: String, lifetime: Duration, password: String
    ) async throws(AgentError) -> SignedInvitation? {
        let signed = try store.make(
            message: message.isEmpty ? nil : message, lifetime: lifetime, password: password,
            askedBy: LocalUser.current(), at: Date(), channel: .helpdesk)
        return try await deliver(signed, title: "Sent to the helpdesk", failure: "sent to the helpdesk") {
            () async throws(AgentError) in
            let presence = try await helpdesk.send(signed)
            return "Your request is with the helpdesk.\n\n\(presence.sentence)\n\nThe helper who takes it will call "
                + "you: tell them the password then, never in writing."
        }
    }

    /// Asks whom to e-mail the invitation to, then has the server send it; says to whom, or why it could not be sent.
    /// - Returns: the invitation sent, if it was.
    private func mail(
        message: String, lifetime: Duration, password: String
    ) async throws(AgentError) -> SignedInvitation? {
        var prompt = "The e-mail address of the colleague or helper who should help you:"
        var recipient: MailAddress?
        while recipient == nil {
            let (status, text) = try await dialog([
                "--entry", "--title=E-mail your request", "--width=480", "--text=\(prompt)", "--ok-label=Send",
            ])
            guard status == 0 else { return nil }
            recipient = try? MailAddress(text.trimmingCharacters(in: .whitespacesAndNewlines))
            prompt = "That is not an e-mail address such as lena.wolf@corp.example. Please type it again:"
        }
        let signed = try store.make(
            message: message.isEmpty ? nil : message, lifetime: lifetime, password: password,
            askedBy: LocalUser.current(), at: Date(), channel: .email, recipient: recipient)
        return try await deliver(signed, title: "Sent by e-mail", failure: "e-mailed") { () async throws(AgentError) in
            let address = try await mail.send(signed)
            return "Your request was e-mailed to \(address).\n\nWhen they call you, tell them the password then, "
                + "never in writing."
        }
    }

    /// Sends `signed` with `sending`, which returns what to tell the person, and tells them, with how long it is
    /// valid; or, when it could not be sent, why — it is revoked then: nobody can use an invitation that did not
    /// arrive.
    /// - Returns: the invitation sent, if it was.
    private func deliver(
        _ signed: SignedInvitation, title: String, failure: String,
        sending: () async throws(AgentError) -> String
    ) async throws(AgentError) -> SignedInvitation? {
        do throws(AgentError) {
            let told = try await sending()
            _ = try await dialog([
                "--info", "--no-markup", "--title=\(title)", "--width=480",
                "--text=\(told)\n\nIt is valid until \(LocalUser.localTime(signed.invitation.expiry ?? Date())). You "
                    + "will still be asked before anyone sees your screen.",
            ])
            return signed
        } catch {
            _ = try? store.revoke(signed.invitation.id.uuidString, at: Date())
            _ = try await dialog([
                "--error", "--no-markup", "--title=Not sent", "--width=480",
                "--text=Your request could not be \(failure), so it was withdrawn:\n\(error.description).\n\n"
                    + "Try again later, or save it as a file instead.",
            ])
            return nil
        }
    }

    /// Runs zenity with `arguments`.
    /// - Returns: its exit status and its output's first line.
    private func dialog(_ arguments: [String]) async throws(AgentError) -> (Int32, String) {
        guard
            let (status, output) = await ChildProgram.run(
                zenity, arguments: arguments, input: nil, timeout: .seconds(3600))
        else { throw .state("cannot show the dialog: \(zenity) did not start") }
        return (status, output.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? "")
    }
}

extension String {
    /// The text with its first letter in upper case, for a sentence on its own.
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
