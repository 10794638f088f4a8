import ArgumentParser
import Crypto
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
        var save: String
        @Option(help: "How long the invitation stays valid: 30m, 2h, 1d (at most 7d).") var expires: String = "1h"
        @Option(help: "What you need help with, for the helper to read.") var message: String?
        @Flag(help: "Make the invitation without a password (only where policy allows it).") var noPassword = false
        @Flag(help: "Read the password from the first line of standard input instead of asking.")
        var passwordStdin = false
        @OptionGroup var state: StateOption

        func validate() throws {
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
            do throws(AgentError) {
                let (key, enrollment) = try agentState.load()
                var passwordKey: SymmetricKey?
                var parameters: InvitationPassword.Parameters?
                if !noPassword {
                    let password = try readPassword()
                    let fresh = InvitationPassword.Parameters.fresh()
                    do throws(InvitationPasswordError) {
                        passwordKey = try InvitationPassword.key(for: password, with: fresh)
                    } catch {
                        throw .invalidArgument(error.description)
                    }
                    parameters = fresh
                }
                let now = Date()
                let lifetime = Duration(text: expires) ?? .seconds(3600)
                let invitation = Invitation(
                    server: enrollment.server, machine: enrollment.machine, askedBy: LocalUser.current(),
                    message: message, channel: .file, createdAt: now,
                    expiresAt: now + Double(lifetime.components.seconds), password: parameters,
                    machineKey: key.publicKey)
                let signed: SignedInvitation
                do {
                    signed = try SignedInvitation(invitation, signingWith: key)
                } catch {
                    throw .state("cannot sign the invitation with the device key")
                }
                guard FileManager.default.createFile(atPath: save, contents: signed.fileContent) else {
                    throw .invalidArgument("cannot write \(save)")
                }
                try InvitationStore(state: agentState).add(signed, key: passwordKey)
                print(
                    """
                    Invitation \(InvitationStore.short(invitation.id)) saved to \(save).
                    It is valid until \(LocalUser.localTime(invitation.expiry ?? now)).
                    """)
                print(
                    noPassword
                        ? "It has no password: anyone who has the file and may help this machine can open it."
                        : "Give your helper the password another way (by phone, in person), never with the file.")
                print(
                    "Revoke it at any time with: ora-agent invitations revoke \(InvitationStore.short(invitation.id))")
            } catch {
                throw fail(error)
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
                let id = InvitationStore.short(invitation.id)
                let expiry = invitation.expiry.map(LocalUser.localTime) ?? "?"
                let what: String =
                    switch record.status(at: now) {
                    case .open: "open until \(expiry)"
                    case .opened:
                        "open until \(expiry); opened by \(AuditText.escaped(record.openedBy ?? "?"))"
                            + (record.failures > 0 ? ", \(record.failures) wrong password(s)" : "")
                    case .used:
                        "used by \(AuditText.escaped(record.usedBy ?? "?")) at "
                            + (record.usedAt.flatMap(Invitation.time).map(LocalUser.localTime) ?? "?")
                    case .expired: "expired at \(expiry)"
                    case .revoked:
                        "revoked at " + (record.revokedAt.flatMap(Invitation.time).map(LocalUser.localTime) ?? "?")
                    case .locked:
                        "locked after \(record.failures) wrong passwords, last by "
                            + AuditText.escaped(record.openedBy ?? "?")
                    }
                let channel = invitation.channel.rawValue
                let note = invitation.message.map { " — \"\(AuditText.escaped($0))\"" } ?? ""
                return "\(id)  \(channel)  \(what)\(note)"
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

/// The person running the command, as the machine knows them.
enum LocalUser {
    /// The account and, from the password database's comment field, the name.
    static func current() -> Invitation.Person {
        guard let entry = getpwuid(geteuid()) else {
            return .init(account: "uid \(geteuid())", displayName: "uid \(geteuid())")
        }
        let account = String(cString: entry.pointee.pw_name)
        let gecos = entry.pointee.pw_gecos.map { String(cString: $0) } ?? ""
        let name = gecos.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return .init(account: account, displayName: name.isEmpty ? account : name)
    }

    /// `date` in this machine's time zone, as people read it: "6 Dec 2026 at 15:30 CET".
    static func localTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB")
        formatter.dateFormat = "d MMM yyyy 'at' HH:mm zzz"
        return formatter.string(from: date)
    }
}
