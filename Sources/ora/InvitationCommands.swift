import ArgumentParser
import Foundation
import ORAClient
import ORACore
import OpenAPIRuntime

extension ORACommand {
    struct InvitationCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "invitation", abstract: "Answer a request for help: open an invitation.",
            subcommands: [OpenInvitation.self])
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
        @Flag(help: "Ask to be allowed to request control later (the person is asked again then).")
        var control = false
        @Option(help: "The ticket the help is about.") var ticket: String?
        @Option(help: "A note for the person at the machine.") var reason: String?
        @Flag(help: "Read the password from the first line of standard input instead of asking.")
        var passwordStdin = false

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
            let invitation = signed.invitation
            let machineKey = try signed.machineKey()
            let client = try authenticatedClient(options)
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
}
