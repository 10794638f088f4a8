import ServiceLifecycle
import Synchronization

/// Which of the server's services are still running while it stops: what a stop that takes too long is waiting for.
final class StoppingWatch: Sendable {
    /// The services, in the order they are listed (and stopped in reverse), and whether each has finished.
    private let services = Mutex<[(name: String, finished: Bool)]>([])

    /// Watches `service` under the name of its type.
    func watching(_ service: any Service) -> any Service {
        let name = String(describing: type(of: service))
        services.withLock { $0.append((name, false)) }
        return Watched(name: name, service: service, watch: self)
    }

    /// The services still running, in the order they are stopped.
    var stillRunning: [String] {
        services.withLock { services in services.reversed().filter { !$0.finished }.map(\.name) }
    }

    /// What stopping waits for now: the first service still running in the order they are stopped, or, while all
    /// of them run, what is stopped before them (the HTTP server, which waits for its connections' requests).
    var waitingFor: String? {
        let running = stillRunning
        let all = services.withLock { $0.count }
        guard !running.isEmpty else { return nil }
        return running.count == all ? "the HTTP server, waiting for its connections' requests" : running[0]
    }

    fileprivate func finished(_ name: String) {
        services.withLock { services in
            if let index = services.firstIndex(where: { $0.name == name && !$0.finished }) {
                services[index].finished = true
            }
        }
    }

    private struct Watched: Service {
        let name: String
        let service: any Service
        let watch: StoppingWatch

        func run() async throws {
            defer { watch.finished(name) }
            try await service.run()
        }
    }
}
