import ArgumentParser
import Foundation
import ORAAgent
import ORACore

#if canImport(Glibc)
import Glibc
#endif

extension ORAAgentCommand {
    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask for help: make an invitation that a helper opens to see this machine's screen.",
            discussion: """
                The invitation is signed with this machine's device key and protected by a password that this \
                machine checks: give the password to your helper another way (by phone, in person). After the \
                password, you are still asked before anyone sees your screen, exactly as for an offer. \
                `ora-agent invitations` shows what became of your invitations and revokes them.
                """)

        @Option(help: ArgumentHelp("Save the invitation to this file (.orainvite) to hand over.", valueName: "file"))
        var save: String?
        @Flag(help: "Send the invitation to the helpdesk's queue, where the helpers who may help this machine see it.")
        var helpdesk = false
        @Option(
            help: ArgumentHelp(
                "Have the server e-mail the invitation to this address (a colleague's, or one policy allows).",
                valueName: "address"))
        var email: String?
        @Option(help: "How long the invitation stays valid: 30m, 2h, 1d (at most 7d).") var expires: String = "1h"
        @Option(help: "What you need help with, for the helper to read.") var message: String?
        @Flag(help: "Make the invitation without a password (only where policy allows it).") var noPassword = false
        @Flag(help: "Read the password from the first line of standard input instead of asking.")
        var passwordStdin = false
        @OptionGroup var state: StateOption

        func validate() throws {
            guard [save != nil, helpdesk, email != nil].filter({ $0 }).count == 1 else {
                throw ValidationError("say where the invitation goes: --helpdesk, --email ADDRESS or --save FILE")
            }
            if let email {
                do {
                    _ = try MailAddress(email)
                } catch {
                    throw ValidationError("--email: \(error)")
                }
            }
            guard let lifetime = Duration(text: expires), lifetime >= .seconds(60), lifetime <= .seconds(7 * 86_400)
            else { throw ValidationError("--expires takes a time between 1m and 7d, such as 30m, 2h or 1d") }
            if noPassword, passwordStdin {
                throw ValidationError("--no-password and --password-stdin exclude each other")
            }
            if let message {
                do {
                    _ = try ChatLine(message)
                } catch {
                    throw ValidationError("--message: \(error)")
                }
            }
        }

        func run() async throws {
            let agentState = AgentState(directory: state.stateDir)
            let store = InvitationStore(state: agentState)
            do throws(AgentError) {
                let password = noPassword ? nil : try readPassword()
                let signed = try store.make(
                    message: message, lifetime: Duration(text: expires) ?? .seconds(3600), password: password,
                    askedBy: LocalUser.current(), at: Date(),
                    channel: helpdesk ? .helpdesk : email != nil ? .email : .file,
                    recipient: email.flatMap { try? MailAddress($0) })
                let id = InvitationStore.short(signed.invitation.id)
                let valid = "It is valid until \(LocalUser.localTime(signed.invitation.expiry ?? Date()))."
                if let save {
                    guard FileManager.default.createFile(atPath: save, contents: signed.fileContent) else {
                        _ = try? store.revoke(signed.invitation.id.uuidString, at: Date())
                        throw .invalidArgument("cannot write \(save)")
                    }
                    print("Invitation \(id) saved to \(save).\n\(valid)")
                    print(
                        noPassword
                            ? "It has no password: anyone who has the file and may help this machine can open it."
                            : "Give your helper the password another way (by phone, in person), never with the file.")
                } else if email != nil {
                    let recipient = try await Self.sendOrRevoke(signed, in: store, to: "by e-mail") {
                        () async throws(AgentError) in try await InvitationMail(state: agentState).send(signed)
                    }
                    print("Invitation \(id) sent by e-mail to \(recipient).\n\(valid)")
                    print(
                        noPassword
                            ? "It has no password: whoever opens the mail and may help this machine can open it."
                            : "Tell the password to your helper when they call you, never by e-mail.")
                } else {
                    let presence = try await Self.sendOrRevoke(signed, in: store, to: "to the helpdesk") {
                        () async throws(AgentError) in try await HelpdeskQueue(state: agentState).send(signed)
                    }
                    print("Invitation \(id) sent to the helpdesk.\n\(presence.sentence)\n\(valid)")
                    print(
                        noPassword
                            ? "It has no password: the helper who takes it from the queue can open it."
                            : "Tell the password to the helper who takes it, when they call you; never write it down.")
                }
                print("Revoke it at any time with: ora-agent invitations revoke \(id)")
            } catch {
                throw fail(error)
            }
        }

        /// Sends `signed` with `send`; an invitation that was not sent (`how`: "to the helpdesk") is of no use to
        /// anyone, so it is revoked here, and the person is told both.
        private static func sendOrRevoke<Answer>(
            _ signed: SignedInvitation, in store: InvitationStore, to how: String,
            _ send: () async throws(AgentError) -> Answer
        ) async throws(AgentError) -> Answer {
            do throws(AgentError) {
                return try await send()
            } catch {
                _ = try? store.revoke(signed.invitation.id.uuidString, at: Date())
                if case .refused(let status, let message) = error {
                    throw .refused(status: status, message: message + "; the invitation was revoked on this machine")
                }
                throw .unreachable(
                    "the invitation could not be sent \(how), so it was revoked on this machine: \(error.description)")
            }
        }

        private func readPassword() throws(AgentError) -> String {
            if passwordStdin {
                let line = readLine(strippingNewline: true) ?? ""
                return line
            }
            guard let first = Self.ask("Password for the invitation (at least 8 characters): ") else {
                throw .invalidArgument("no terminal to ask for the password; use --password-stdin")
            }
            guard let second = Self.ask("The same password again: "), second == first else {
                throw .invalidArgument("the two passwords differ")
            }
            return first
        }

        /// Asks on the terminal without echoing what is typed.
        private static func ask(_ prompt: String) -> String? {
            guard let typed = getpass(prompt) else { return nil }
            return String(cString: typed)
        }
    }

    struct Ask: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask for help on the desktop: your invitations, revoking one, and making a new one.",
            discussion: """
                Opens the "Ask for help" dialogs (zenity) on the display in $DISPLAY: the invitations made on this \
                machine and what became of them, revoking one, and a form for a new invitation. The desktop \
                entry ora-ask-for-help.desktop starts it from the menu.
                """)
        @OptionGroup var state: StateOption

        func run() async throws {
            let home = ProcessInfo.processInfo.environment["HOME"] ?? FileManager.default.currentDirectoryPath
            do throws(AgentError) {
                try await AskForHelp(state: AgentState(directory: state.stateDir), folder: home).run()
            } catch {
                throw fail(error)
            }
        }
    }

    struct Invitations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what became of this machine's invitations, or revoke one.",
            subcommands: [List.self, Revoke.self],
            defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show every invitation: open, opened by whom, used, expired, revoked or locked.")

            @OptionGroup var state: StateOption

            func run() async throws {
                do throws(AgentError) {
                    let records = try InvitationStore(state: AgentState(directory: state.stateDir)).records()
                    guard !records.isEmpty else {
                        print("No invitations on this machine. Make one with: ora-agent invite --save FILE")
                        return
                    }
                    let now = Date()
                    for record in records {
                        print(Self.line(record, at: now))
                    }
                } catch {
                    throw fail(error)
                }
            }

            /// One invitation, as the person reads it.
            static func line(_ record: InvitationStore.Record, at now: Date) -> String {
                let invitation = record.invitation
                let note = invitation.message.map { " — \"\(AuditText.escaped($0))\"" } ?? ""
                let recipient = invitation.recipient.map { " to " + AuditText.escaped($0) } ?? ""
                return "\(InvitationStore.short(invitation.id))  \(invitation.channel.rawValue)\(recipient)  "
                    + record.statusText(at: now) + note
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Revoke an invitation at once: this machine refuses it from now on, also offline.")

            @Argument(help: "The invitation's id, or its first characters (at least 4).") var id: String
            @OptionGroup var state: StateOption

            func run() async throws {
                do throws(AgentError) {
                    let record = try InvitationStore(state: AgentState(directory: state.stateDir))
                        .revoke(id, at: Date())
                    print(
                        "Invitation \(InvitationStore.short(record.invitation.id)) revoked: this machine refuses it "
                            + "from now on.")
                } catch {
                    throw fail(error)
                }
            }
        }
    }
}
