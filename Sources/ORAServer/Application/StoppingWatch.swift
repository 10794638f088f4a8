import ServiceLifecycle
import Synchronization

/// Which of the server's services are still running while it stops: what a stop that takes too long is waiting for.
final class StoppingWatch: Sendable {
    /// The services, in the order they are listed (and stopped in reverse), and whether each has finished.
    private let services = Mutex<[(name: String, finished: Bool)]>([])

    /// Watches `service` under the name of its type.
    func watching(_ service: any Service) -> any Service {
        let name = String(describing: type(of: service))
        let index = services.withLock { services in
            services.append((name, false))
            return services.count - 1
        }
        return Watched(index: index, service: service, watch: self)
    }

    /// The services still running, in the order they are stopped.
    var stillRunning: [String] {
        services.withLock { Self.running(in: $0) }
    }

    /// What stopping waits for now: the first service still running in the order they are stopped, or, while all
    /// of them run, what is stopped before them (the HTTP server, which waits for its connections' requests).
    var waitingFor: String? {
        services.withLock { services in
            let running = Self.running(in: services)
            guard let first = running.first else { return nil }
            return running.count == services.count ? "the HTTP server, waiting for its connections' requests" : first
        }
    }

    private static func running(in services: [(name: String, finished: Bool)]) -> [String] {
        services.reversed().filter { !$0.finished }.map(\.name)
    }

    private struct Watched: Service {
        let index: Int
        let service: any Service
        let watch: StoppingWatch

        func run() async throws {
            defer { watch.services.withLock { $0[index].finished = true } }
            try await service.run()
        }
    }
}
