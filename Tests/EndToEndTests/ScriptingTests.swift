import Foundation
import ORAClient
import ORATestSupport
import Testing

/// Every command that prints data prints, with `--json`, what the API documents: each output here is decoded as the
/// schema of `Docs/openapi.yaml` it names, and a denial exits non-zero with JSON as without it.
@Suite("The CLI for scripts")
struct ScriptingTests {
    @Test("each --json output decodes as its documented schema")
    func jsonShapes() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let admin = setup.admin
        let decoder = JSONDecoder.oraAPI()
        /// Runs `arguments` with `--json`, expecting `status`, and decodes its output as `type`.
        func decoded<T: Decodable>(
            _ type: T.Type, _ arguments: String..., status: Int32 = 0
        ) async throws -> T {
            let result = await ChildProcess.runAsync(
                admin.ora, arguments: arguments + ["--json"], environment: admin.environment)
            #expect(result.status == status, "\(arguments): \(result.standardError)")
            do {
                return try decoder.decode(T.self, from: Data(result.standardOutput.utf8))
            } catch {
                Issue.record("\(arguments) printed what does not decode as \(T.self): \(result.standardOutput)")
                throw error
            }
        }
        /// JSON lines: one object a line, each decoded as `type`.
        func lines<T: Decodable>(_ type: T.Type, _ arguments: String...) async throws -> [T] {
            let result = await ChildProcess.runAsync(
                admin.ora, arguments: arguments + ["--json"], environment: admin.environment)
            #expect(result.status == 0, "\(arguments): \(result.standardError)")
            return try result.standardOutput.split(separator: "\n").map {
                try decoder.decode(T.self, from: Data($0.utf8))
            }
        }

        #expect(try await decoded(Schemas.Identity.self, "whoami")._operator.account == "peter.schmidt")
        #expect(try await decoded(Schemas.Readiness.self, "status").status == .ready)
        _ = try await decoded(Schemas.HelperMachinePage.self, "machines")
        #expect(try await decoded(Array<Schemas.Session>.self, "sessions").isEmpty)
        #expect(try await decoded(Array<Schemas.Machine>.self, "agents", "list").map(\.name) == ["ws-0101"])
        #expect(try await decoded(Schemas.Machine.self, "agents", "show", "WS-0101").name == "ws-0101")
        #expect(try await decoded(Array<Schemas.EnrollmentTokenRecord>.self, "agents", "token", "list").count == 1)
        #expect(!(try await decoded(Array<Schemas.OperatorSession>.self, "operators", "sessions").isEmpty))
        #expect(try await decoded(Schemas.PolicyDocument.self, "policy", "show").activation?.version == 1)
        #expect(try await decoded(Array<Schemas.PolicyActivation>.self, "policy", "history").count == 1)
        let diff = try await decoded(Schemas.PolicyVersionDiff.self, "policy", "diff", "--from", "1")
        #expect(diff.added.isEmpty && diff.changed.isEmpty)
        let allowed = try await decoded(
            Schemas.PolicyExplanation.self, "policy", "explain", "--operator", "lena.wolf", "--machine", "WS-0101",
            "--mode", "control", "--ticket", "INC0012345")
        #expect(allowed.allowed && allowed.exclusions == [])
        // A denial: exit 1, and the same document.
        let denied = try await decoded(
            Schemas.PolicyExplanation.self, "policy", "explain", "--operator", "lena.wolf", "--machine", "SRV-DC01",
            status: 1)
        #expect(!denied.allowed)
        _ = try await decoded(Schemas.InvitationQueue.self, "invitations")
        let events = try await lines(Schemas.AuditEvent.self, "audit", "search")
        #expect(events.contains { $0.event == "policy.applied" })
        #expect(try await decoded(Schemas.AuditVerificationReport.self, "audit", "verify").intact)
        #expect(try await lines(Schemas.AuditEvent.self, "audit", "session", UUID().uuidString).isEmpty)
    }
}
