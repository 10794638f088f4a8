import Foundation
import ORATestSupport
import Testing

/// The running server held to its document, `Docs/openapi.yaml`, by schemathesis: requests made from the document's
/// schemas, valid and invalid, against a server with a machine enrolled and its agent online.
@Suite("The API against its document")
struct APIContractTests {
    /// Operations left out of the run, and why: the first three would end the token the run uses; the queue's
    /// stream lasts until the client closes it, which schemathesis does not.
    static let excluded = ["logout", "revokeOperatorSessions", "revokeOperatorSession", "watchInvitationQueue"]

    @Test("no 5xx, no answer outside the document, every error in the one JSON shape")
    func schemathesis() async throws {
        let setup = try await OfferSetup.make(enrolling: "WS-0101")
        let agent = try setup.startAgent()
        defer { agent.send(SIGTERM) }
        // An administrator with every role, so every operation is reached past its role check.
        let token = try await setup.server.token("peter.schmidt")
        try await waitUntilOnline("ws-0101", server: setup.server, token: token)
        let reports = try TemporaryDirectory()
        let python = try ScreenTests.testPython()
        let schemathesis = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent(
            "schemathesis"
        ).path
        var arguments = [
            "run", SourceTree.root + "/Docs/openapi.yaml", "--url", setup.server.base,
            "--header", "Authorization: Bearer \(token)",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples", "25", "--seed", "20261205", "--workers", "1", "--request-timeout", "10",
            "--phases", "examples,coverage,fuzzing", "--generation-database", "none", "--warnings", "off", "--no-color",
            "--report", "junit", "--report-dir", reports.path,
        ]
        for operation in Self.excluded { arguments += ["--exclude-operation-id", operation] }
        // Run in the scratch directory, where schemathesis and Hypothesis keep their caches.
        let run = await ChildProcess.runAsync(
            "/usr/bin/env", arguments: ["-C", reports.path, schemathesis] + arguments)
        #expect(
            run.status == 0, "schemathesis found answers outside the document:\n\(run.standardOutput.suffix(20_000))")
    }
}
