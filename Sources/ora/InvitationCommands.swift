import ArgumentParser
import Foundation
import ORAClient
import ORACore
import OpenAPIRuntime

extension ORACommand {
    struct InvitationCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "invitation", abstract: "Answer a request for help: take one from the queue, or open a file.",
            subcommands: [TakeInvitation.self, OpenInvitation.self])
    }

    struct InvitationsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "invitations",
            abstract: "The helpdesk's queue: the invitations you may answer.",
            discussion: """
                Lists the open invitations that people at machines sent to the helpdesk (ora-agent invite \
                --helpdesk) and that policy allows you to answer, oldest first. With --watch, keeps listing each \
                one as it arrives, is taken (and by whom) or is withdrawn, until interrupted; while you watch, the \
                people asking see you as online. Take one with: ora invitation take ID
                """)
        @OptionGroup var options: ServerOption
        @Flag(help: "Keep watching: show each invitation as it arrives, is taken or is withdrawn.") var watch = false
        @Flag(help: "Print the server's JSON answer; with --watch, one JSON object per change.") var json = false

        func run() async throws {
            let client = try authenticatedClient(options)
            guard watch else {
                let queue = try await client.call { try await $0.listInvitationQueue().ok.body.json }
                if json { return try printJSON(queue) }
                guard !queue.invitations.isEmpty else {
                    print("The queue is empty: no open invitation that you may answer.")
                    return
                }
                for invitation in queue.invitations { print(Self.line(invitation)) }
                return
            }
            let watching = client.waiting(.seconds(12 * 3600))
            let events = try await watching.call { try await $0.watchInvitationQueue().ok.body.textEventStream }
            // With --json, standard output holds only the JSON lines.
            let note = "Watching the helpdesk's queue; Ctrl+C to stop."
            if json { FileHandle.standardError.write(Data((note + "\n").utf8)) } else { ChatPrinter.say(note) }
            let decoder = JSONDecoder.oraAPI()
            do {
                for try await event in events.asDecodedServerSentEvents() where event.event == "invitation" {
                    guard let data = event.data else { continue }
                    let invitation = try decoder.decode(Components.Schemas.QueuedInvitation.self, from: Data(data.utf8))
                    if json {
                        try printJSON(invitation)
                        fflush(nil)
                    } else {
                        ChatPrinter.say(Self.line(invitation))
                    }
                }
            } catch {
                throw watching.failure(error)
            }
            throw fail("the server closed the queue's stream", code: 3)
        }

        /// One invitation, as a helper reads it: id, machine, who, what, and where it stands.
        static func line(_ invitation: Components.Schemas.QueuedInvitation) -> String {
            let who = "\(AuditText.escaped(invitation.askedBy)) (\(AuditText.escaped(invitation.askedByAccount)))"
            let message = invitation.message.map { " \"\(AuditText.escaped($0))\"" } ?? ""
            let state: String =
                switch invitation.state {
                case .open:
                    "open until \(TimeText.local(invitation.expiresAt))"
                        + (invitation.password ? ", password" : ", no password")
                case .taken:
                    "taken by \(AuditText.escaped(invitation.takenBy ?? "another helper"))"
                        + (invitation.takenAt.map { " at \(TimeText.local($0))" } ?? "")
                case .withdrawn: invitation.withdrawnReason == .expired ? "expired" : "revoked by the person"
                }
            return "\(invitation.id.lowercased())  \(invitation.machine.uppercased())  \(who)\(message)  [\(state)]"
        }
    }
}

extension ORACommand.InvitationCommand {
    struct OpenInvitation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "open",
            abstract: "Open an invitation file (.orainvite) that the person at a machine gave you.",
            discussion: """
                Checks that the invitation is genuine — signed by the machine it names, with the key the server \
                has enrolled for it — then asks for the password the person told you, and proves it to the \
                machine without sending it: the machine checks it. Five wrong passwords lock the invitation. The \
                person at the machine is then asked, as for any offer, before you see the screen.
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The invitation file.") var file: String
        @OptionGroup var opening: InvitationOpener

        func run() async throws {
            guard let content = FileManager.default.contents(atPath: file) else {
                throw fail("cannot read \(file)", code: 1)
            }
            let signed: SignedInvitation
            do throws(InvitationError) {
                signed = try SignedInvitation(fileContent: content)
            } catch {
                throw fail("\(file): \(error.description)", code: 2)
            }
            try await opening.open(signed, content: content, client: try authenticatedClient(options))
        }
    }

    struct TakeInvitation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "take",
            abstract: "Take an invitation from the helpdesk's queue and open it.",
            discussion: """
                The first helper to take an invitation gets it; if someone was quicker, you are told who. Then, as \
                for a file: the invitation is checked as genuine, you are asked for the password the person tells \
                you (call them), the machine checks it, and the person at the machine is asked before you see the \
                screen.
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The invitation's id, as ora invitations shows it.") var id: String
        @OptionGroup var opening: InvitationOpener

        func run() async throws {
            let client = try authenticatedClient(options)
            let taken = try await client.call { try await $0.takeInvitation(path: .init(id: id)).ok.body.json }
            guard let file = taken.file else { throw fail("the server's answer holds no invitation file", code: 1) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let content = try encoder.encode(file)
            let signed: SignedInvitation
            do throws(InvitationError) {
                signed = try SignedInvitation(fileContent: content)
            } catch {
                throw fail("the invitation from the queue: \(error.description)", code: 2)
            }
            print("you took invitation \(taken.id.lowercased()) from the queue")
            try await opening.open(signed, content: content, client: client)
        }
    }
}

/// Opens an invitation as a helper: the server's checks, then the password proved to the machine; with the options
/// of `ora invitation open` and `take`.
struct InvitationOpener: ParsableArguments {
    @Flag(help: "Ask to be allowed to request control later (the person is asked again then).")
    var control = false
    @Option(help: "The ticket the help is about.") var ticket: String?
    @Option(help: "A note for the person at the machine.") var reason: String?
    @Flag(help: "Read the password from the first line of standard input instead of asking.")
    var passwordStdin = false

    func open(_ signed: SignedInvitation, content: Data, client: APIClient) async throws {
        let invitation = signed.invitation
        let machineKey = try signed.machineKey()
        let request = try JSONDecoder().decode(Components.Schemas.SignedInvitation.self, from: content)
        let body = Components.Schemas.InvitationOpenRequest(
            invitation: request, mode: control ? .control : .view, ticket: ticket, reason: reason)
        let opening = try await client.call { try await $0.openInvitation(body: .json(body)).created.body.json }
        // The server accepted the key as the machine's enrolled key, or it would have refused.
        print("genuine invitation from \(opening.machine.uppercased()), signed by its enrolled key")
        print(
            "asked by \(AuditText.escaped(invitation.askedBy.displayName)) "
                + "(\(AuditText.escaped(invitation.askedBy.account)))"
                + (invitation.message.map { ": \"\(AuditText.escaped($0))\"" } ?? ""))
        if let offered = opening.offered {
            return report(offered, client: client)
        }
        guard let challenge = opening.challenge, let parameters = invitation.password,
            let challengeInvitation = UUID(uuidString: challenge.invitation),
            let challengeSession = UUID(uuidString: challenge.session),
            challengeInvitation == invitation.id
        else { throw fail("the server's answer holds no challenge for this invitation", code: 1) }
        let password = try readPassword()
        let question = InvitationPassword.Challenge(
            invitation: challengeInvitation, session: challengeSession, operatorDN: challenge.operatorDn,
            nonce: challenge.nonce)
        let answer: Data
        do throws(InvitationPasswordError) {
            // The parameters come from the signed file, never from the server.
            answer = InvitationPassword.proof(
                with: try InvitationPassword.key(for: password, with: parameters), for: question)
        } catch {
            throw fail(error.description, code: 2)
        }
        let sealed = try InvitationPassword.SealedProof(answer, of: question, to: machineKey)
        let proof = Components.Schemas.InvitationProofRequest(
            session: challenge.session, machine: opening.machine,
            proof: .init(ephemeralKey: sealed.ephemeralKey, box: sealed.box))
        let offered = try await client.call {
            try await $0.proveInvitationPassword(body: .json(proof)).created.body.json
        }
        print("the password was accepted by \(opening.machine.uppercased())")
        report(offered, client: client)
    }

    private func report(_ session: Components.Schemas.Session, client: APIClient) {
        print(
            "offered \(session.mode) to \(session.machine), allowed by \(session.policies.joined(separator: ", ")) "
                + "(policy version \(session.policyVersion)); session \(session.id.lowercased())")
        print(
            "the person at the machine is asked now; watch it in the console: "
                + client.consolePage(ofSession: session.id))
    }

    private func readPassword() throws -> String {
        if passwordStdin { return Terminal.readPasswordFromStandardInput() }
        guard let typed = Terminal.readPassword(prompt: "Password of the invitation: ") else {
            throw fail("no terminal to ask for the password; use --password-stdin", code: 2)
        }
        return typed
    }
}
