import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
import ORACore

#if canImport(Glibc)
import Glibc
#endif

/// Checks everything the agent needs for a session to work, and says in plain words what is wrong and how to fix
/// it: the enrollment and its key file, the server (reachable, its certificate trusted), the clock, the X11 display
/// (a Wayland session is named as unsupported), the screen backend (started against the display until it speaks
/// RFB) and the way the person at the machine is asked. Remote Assistance failed silently when a setting was off;
/// this says which.
public struct AgentDoctor: Sendable {
    /// One finding.
    public struct Finding: Sendable, Hashable {
        /// Whether it is fine.
        public enum Verdict: String, Sendable, Hashable {
            case ok
            /// A session cannot work until it is fixed.
            case fail = "FAIL"
        }

        /// What was checked: `enrollment`, `server`, `clock`, `display`, `screen`, `consent`.
        public var check: String
        public var verdict: Verdict
        /// What was found.
        public var detail: String
        /// How to fix it, for a failure.
        public var fix: String?

        public init(_ check: String, _ verdict: Verdict, _ detail: String, fix: String? = nil) {
            self.check = check
            self.verdict = verdict
            self.detail = detail
            self.fix = fix
        }

        /// The finding as the doctor prints it: `ok    clock       within 1 s of the server's`, and for a failure
        /// the fix on the next line.
        public var text: String {
            let head =
                verdict.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)
                + check.padding(toLength: 12, withPad: " ", startingAt: 0) + detail
            return fix.map { head + "\n" + String(repeating: " ", count: 18) + "fix: " + $0 } ?? head
        }
    }

    /// How the person at the machine is asked, as `ora-agent run --consent` says.
    public enum Consent: Sendable, Hashable {
        case terminal
        case desktop(windowProgram: String)
        case command(String)
    }

    /// The state directory.
    public var state: AgentState
    /// The display the screen is shared from.
    public var display: String
    /// The screen backend's command.
    public var screen: ScreenBackend
    /// How consent is asked.
    public var consent: Consent
    /// The environment (for the session type).
    public var environment: [String: String]
    /// The largest clock difference to the server that still works.
    public static let clockTolerance: Double = 60

    public init(
        state: AgentState, display: String, screen: ScreenBackend, consent: Consent,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.state = state
        self.display = display
        self.screen = screen
        self.consent = consent
        self.environment = environment
    }

    /// Every finding, in the order a session needs them.
    public func examine() async -> [Finding] {
        var findings: [Finding] = []
        let enrollment: AgentState.Enrollment?
        do throws(AgentError) {
            let (_, loaded) = try state.load()
            enrollment = loaded
            findings.append(Finding("enrollment", .ok, "enrolled as \(loaded.machine) with \(loaded.server)"))
        } catch {
            enrollment = nil
            findings.append(Self.enrollmentFinding(error, keyFile: state.keyFile.path))
        }
        if let enrollment {
            findings += await serverFindings(enrollment)
        }
        let displayFinding = Self.displayFinding(display: display, environment: environment)
        findings.append(displayFinding)
        findings.append(displayFinding.verdict == .ok ? await screenFinding() : skipped("screen", because: "display"))
        findings.append(await consentFinding(displayWorks: displayFinding.verdict == .ok))
        return findings
    }

    // MARK: Enrollment

    static func enrollmentFinding(_ error: AgentError, keyFile: String) -> Finding {
        switch error {
        case .notEnrolled:
            return Finding(
                "enrollment", .fail, "this machine is not enrolled",
                fix: "ask an administrator for a token (ora agents token create --machine NAME) and run "
                    + "ora-agent enroll --server URL --token TOKEN")
        case .state(let message) where message.contains("mode 0600"):
            return Finding(
                "enrollment", .fail, "the device key \(keyFile) can be read by other users",
                fix: "chmod 600 \(keyFile), and enroll again if others may have read it")
        default:
            return Finding(
                "enrollment", .fail, error.description,
                fix: "enroll again: ora-agent enroll --server URL --token TOKEN")
        }
    }

    // MARK: Server and clock

    private func serverFindings(_ enrollment: AgentState.Enrollment) async -> [Finding] {
        let trust = enrollment.caFile.map { "the CA in \($0)" } ?? "the system's CAs"
        let secure = enrollment.server.hasPrefix("https://")
        let answer: (status: Int, date: String?)
        do {
            answer = try await Self.health(server: enrollment.server, caFile: enrollment.caFile)
        } catch {
            return [
                Self.unreachable(enrollment.server, error: error, trust: trust),
                skipped("clock", because: "server"),
            ]
        }
        guard answer.status == 200 else {
            return [
                Finding(
                    "server", .fail, "\(enrollment.server) answered HTTP \(answer.status) to /healthz",
                    fix: "check that \(enrollment.server) is the ora server, and its log"),
                skipped("clock", because: "server"),
            ]
        }
        let how = secure ? "TLS verified with \(trust)" : "plain HTTP on this machine"
        return [
            Finding("server", .ok, "\(enrollment.server) answers (\(how))"),
            Self.clockFinding(serverDate: answer.date.flatMap(Self.httpDate), now: Date()),
        ]
    }

    static func unreachable(_ server: String, error: any Error, trust: String) -> Finding {
        let text = String(describing: error)
        if text.contains("certificate") || text.contains("CERTIFICATE") || text.contains("handshake")
            || text.contains("SSL")
        {
            return Finding(
                "server", .fail, "the certificate of \(server) is not trusted by \(trust) (\(text))",
                fix: "enroll with the CA that issued the server's certificate: ora-agent enroll --ca-file CA.pem …")
        }
        return Finding(
            "server", .fail, "cannot reach \(server) (\(text))",
            fix: "check that ora-server runs there and that this machine may connect to its port")
    }

    static func clockFinding(serverDate: Date?, now: Date) -> Finding {
        guard let serverDate else {
            return Finding("clock", .fail, "the server's answer has no time to compare with", fix: "check the server")
        }
        let difference = now.timeIntervalSince(serverDate)
        // The server's Date has whole seconds.
        let seconds = Int(abs(difference).rounded())
        guard abs(difference) > clockTolerance + 1 else {
            return Finding("clock", .ok, "within \(max(1, seconds)) s of the server's")
        }
        return Finding(
            "clock", .fail,
            "this machine's clock is \(seconds) s \(difference > 0 ? "ahead of" : "behind") the server's",
            fix: "keep the clock in time (timedatectl set-ntp true, or chrony): consent answers carry their time")
    }

    /// Sends `findings` to the server, signed with the machine's device key, where its administrators see the
    /// latest (`ora agents show NAME`): only when the machine is enrolled and its server answered.
    /// - Returns: what to print about it, or `nil` when there was no server to tell.
    public func report(_ findings: [Finding], at now: Date = Date()) async -> String? {
        guard findings.contains(where: { $0.check == "server" && $0.verdict == .ok }),
            let (key, enrollment) = try? state.load()
        else { return nil }
        let checks = findings.map { finding in
            DoctorReport.Check(
                name: finding.check, ok: finding.verdict == .ok,
                detail: finding.fix.map { finding.detail + "; fix: " + $0 } ?? finding.detail)
        }
        do {
            let report = try DoctorReport(machine: enrollment.machine, checks: checks, at: now, signingWith: key)
            let (status, body) = try await Self.post(report, server: enrollment.server, caFile: enrollment.caFile)
            guard status == 204 else {
                return "the server did not keep this report (HTTP \(status)): \(body.prefix(300))"
            }
            return "reported to \(enrollment.server); `ora agents show \(enrollment.machine)` shows it"
        } catch {
            return "could not report to \(enrollment.server): \(error)"
        }
    }

    /// POST `/agent/v1/doctor`: the status and the start of the body.
    static func post(_ report: DoctorReport, server: String, caFile: String?) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: server + "/agent/v1/doctor")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(report)))
        let (status, _, body) = try await send(request, caFile: caFile)
        return (status, body)
    }

    /// GET `/healthz`: the status and the `Date` header.
    static func health(server: String, caFile: String?) async throws -> (status: Int, date: String?) {
        let (status, date, _) = try await send(HTTPClientRequest(url: server + "/healthz"), caFile: caFile)
        return (status, date)
    }

    /// Sends `request` on a client of its own, trusting the enrollment's CA (or the system's): the status, the
    /// `Date` header and the start of the body.
    private static func send(
        _ request: HTTPClientRequest, caFile: String?
    ) async throws -> (status: Int, date: String?, body: String) {
        var configuration = Enroller.configuration(caFile: caFile)
        // A doctor says at once that it cannot connect, rather than trying again.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            let body = try await response.body.collect(upTo: 1 << 16)
            try? await client.shutdown()
            return (Int(response.status.code), response.headers.first(name: "Date"), String(buffer: body))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    // MARK: Display

    /// Whether the X11 display answers; a Wayland session is named as what it is.
    static func displayFinding(display: String, environment: [String: String]) -> Finding {
        if environment["XDG_SESSION_TYPE"] == "wayland"
            || (environment["WAYLAND_DISPLAY"] != nil && environment["DISPLAY"] == nil)
        {
            return Finding(
                "display", .fail, "this is a Wayland session; ora shares X11 displays only",
                fix: "log in to an X11 (Xorg) session: choose \"GNOME on Xorg\" at the login screen")
        }
        guard let number = displayNumber(display) else {
            return Finding(
                "display", .fail, "\"\(display)\" is not an X11 display name",
                fix: "name the display as :0 (ora-agent run --display :0)")
        }
        let socket = "/tmp/.X11-unix/X\(number.number)"
        if number.host.isEmpty || number.host == "unix" {
            guard connectsLocally(to: socket) else {
                return Finding(
                    "display", .fail, "no X server answers on display \(display) (\(socket))",
                    fix: "run the agent in the person's X11 session, with DISPLAY set as there")
            }
            return Finding("display", .ok, "X11 display \(display) answers")
        }
        return Finding("display", .ok, "X11 display \(display) (on \(number.host); not checked from here)")
    }

    /// The host and number of an X11 display name (`:0`, `:1.0`, `host:10`).
    static func displayNumber(_ display: String) -> (host: String, number: Int)? {
        guard let colon = display.lastIndex(of: ":") else { return nil }
        let host = String(display[..<colon])
        let rest = display[display.index(after: colon)...]
        guard let number = Int(rest.split(separator: ".", omittingEmptySubsequences: false).first ?? ""),
            number >= 0
        else { return nil }
        return (host, number)
    }

    static func connectsLocally(to path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return connected == 0
    }

    // MARK: Screen

    /// Starts the screen backend as a session does (`ScreenBackend.start`) and waits up to 10 seconds for its RFB
    /// greeting.
    private func screenFinding() async -> Finding {
        let program = screen.command[0]
        guard Self.executable(program, environment: environment) != nil else {
            return Finding(
                "screen", .fail, "\(program) is not installed",
                fix: program == "x11vnc" ? "apt-get install x11vnc" : "install \(program), or name another program")
        }
        let running: RunningScreen
        do throws(AgentError) {
            running = try await screen.start()
        } catch {
            return Finding("screen", .fail, error.description)
        }
        let greeting = await Self.greeting(of: running, within: .seconds(10))
        await running.stop()
        guard greeting.count == 12, greeting.starts(with: Array("RFB ".utf8)) else {
            return Finding(
                "screen", .fail, "\(program) did not start sharing \(display) (no RFB greeting within 10 s)",
                fix: "run \(screen.command.joined(separator: " ")) by hand in this session to see why")
        }
        let version = String(decoding: greeting.dropLast(), as: UTF8.self)
        return Finding("screen", .ok, "\(program) shares \(display) (\(version))")
    }

    /// The first 12 bytes the backend sends (an RFB server's version line), or fewer when it sends less within
    /// `limit` or ends; its channel is closed afterwards.
    static func greeting(of running: RunningScreen, within limit: Duration) async -> [UInt8] {
        // A backend that sends nothing is cut off at `limit`: closing its channel ends the read.
        let timer = Task {
            try await Task.sleep(for: limit)
            try await running.channel.channel.close()
        }
        defer { timer.cancel() }
        var received: [UInt8] = []
        try? await running.channel.executeThenClose { inbound, _ in
            for try await buffer in inbound {
                received += buffer.readableBytesView
                if received.count >= 12 { break }
            }
        }
        return Array(received.prefix(12))
    }

    // MARK: Consent

    private func consentFinding(displayWorks: Bool) async -> Finding {
        switch consent {
        case .terminal:
            let terminal = open("/dev/tty", O_RDWR)
            guard terminal >= 0 else {
                return Finding(
                    "consent", .fail, "--consent terminal asks on a terminal, and this process has none",
                    fix: "run the agent in the person's terminal, or use --consent desktop")
            }
            close(terminal)
            return Finding("consent", .ok, "the person is asked in this terminal")
        case .desktop(let windowProgram):
            for (program, package) in [("zenity", "zenity"), ("python3", "python3-gi gir1.2-gtk-3.0")]
            where Self.executable(program, environment: environment) == nil {
                return Finding(
                    "consent", .fail, "--consent desktop needs \(program), which is not installed",
                    fix: "apt-get install \(package)")
            }
            guard FileManager.default.isExecutableFile(atPath: windowProgram) else {
                return Finding(
                    "consent", .fail, "the session window program \(windowProgram) is missing",
                    fix: "install the ora-agent package again, or name it with --window-program")
            }
            guard await Self.pythonHasGTK(environment: environment) else {
                return Finding(
                    "consent", .fail, "the session window needs GTK 3 for Python, which is not installed",
                    fix: "apt-get install python3-gi gir1.2-gtk-3.0")
            }
            guard displayWorks else { return skipped("consent", because: "display") }
            return Finding("consent", .ok, "the person is asked in a dialog and shown the session window")
        case .command(let program):
            guard FileManager.default.isExecutableFile(atPath: program) else {
                return Finding(
                    "consent", .fail, "the consent program \(program) is missing or not executable",
                    fix: "chmod +x \(program), or name another with --consent-command")
            }
            return Finding("consent", .ok, "the person is asked by \(program)")
        }
    }

    static func pythonHasGTK(environment: [String: String]) async -> Bool {
        guard let python = executable("python3", environment: environment) else { return false }
        let answer = await ChildProgram.run(
            python, arguments: ["-c", "import gi; gi.require_version('Gtk', '3.0')"], input: nil, timeout: .seconds(10))
        return answer?.0 == 0
    }

    // MARK: Helpers

    private func skipped(_ check: String, because other: String) -> Finding {
        Finding(check, .fail, "not checked: the \(other) check failed", fix: "fix the \(other) first")
    }

    /// `program`'s path: itself when it names one, else where `PATH` finds it.
    static func executable(_ program: String, environment: [String: String]) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
