import ORATestSupport
import ServiceLifecycle
import Testing

@testable import ORAServer

@Suite("What a stopping server waits for")
struct StoppingWatchTests {
    /// Runs until cancelled.
    struct Directory: Service {
        func run() async throws { try await Task.sleep(for: .seconds(3600)) }
    }

    /// Runs until cancelled.
    struct Database: Service {
        func run() async throws { try await Task.sleep(for: .seconds(3600)) }
    }

    /// Ends at once.
    struct Heartbeat: Service {
        func run() async throws {}
    }

    @Test("the first service still running in the order of stopping; the HTTP server while all of them run")
    func waitingFor() async throws {
        let watch = StoppingWatch()
        let services = [Directory(), Database(), Heartbeat()].map(watch.watching)
        #expect(watch.waitingFor == "the HTTP server, waiting for its connections' requests")
        #expect(watch.stillRunning == ["Heartbeat", "Database", "Directory"])

        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in services { group.addTask { try await service.run() } }
            // The heartbeat ends; the database, stopped next, is what stopping waits for.
            let settled = try await eventually { watch.stillRunning == ["Database", "Directory"] }
            #expect(settled, "\(watch.stillRunning)")
            #expect(watch.waitingFor == "Database")
            group.cancelAll()
            while (try? await group.next()) != nil {}
        }
        #expect(watch.stillRunning.isEmpty)
        #expect(watch.waitingFor == nil)
    }
}
