import ORAServer
import Testing

/// The one line an administrator reads when the server stops with an error.
@Suite("Server error descriptions")
struct ServerErrorDescriptionTests {
    @Test("a stop that ran past its limit says how long the limit was and that the rest was cancelled")
    func stoppingLimitExceeded() {
        #expect(
            ServerErrorDescription.describe(StoppingLimitExceeded(limit: .seconds(30)))
                == "stopping took longer than 30 seconds; what was still running was cancelled")
    }
}
