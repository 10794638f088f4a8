import Crypto
public import Foundation
import HummingbirdWSClient
public import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import ORACore
import ORARelay
import Synchronization

/// The agent at work: keeps one outbound connection to the server, proves the device key on each, asks the person
/// at the machine about every offer and control request, and signs each answer. It reconnects after a lost
/// connection with exponential back-off and jitter, so a restarted server is not hit by every agent at once.
public final class AgentRunner: Sendable {
    /// What the agent knows about one session: the offer it answered and whether control is granted now. The
    /// agent is the authority on control: the server's word is not enough.
    struct LocalSession: Sendable {
        var offer: Offer
        var accepted = false
        var hasControl = false
        /// What the person is shown, once they accepted; drawn by `window`.
        var view: SessionView?
        var window: (any SessionWindow)?
    }

    /// The device key's raw bytes (keys themselves are not Sendable).
    private let keyBytes: Data
    private let enrollment: AgentState.Enrollment
    private let consent: any ConsentProvider
    private let screen: ScreenBackend
    private let logger: Logger
    private let sessions = Mutex<[UUID: LocalSession]>([:])
    /// The machine's invitations, which decide every use of one.
    private let invitations: InvitationStore
    /// The challenges this agent sent for invitations being opened, by session: each is answered once.
    private let challenges = Mutex<[UUID: InvitationPassword.Challenge]>([:])
    /// The reports of invitations sent on this connection and not yet acknowledged ("id/status").
    private let reporting = Mutex<Set<String>>([])
    /// The invitations this agent let through, by the session they were opened for, and for whom.
    private let admitted = Mutex<[UUID: (invitation: UUID, operatorDN: String)]>([:])
    /// The screen connections of each session, stopped when it ends.
    private let screens = Mutex<[UUID: [Task<Void, Never>]]>([:])

    /// Creates a runner for the enrolled machine in `state`.
    /// - Throws: `AgentError.notEnrolled` or `.state` when the state directory cannot be used.
    /// - Parameter screen: the local VNC server started for each viewer.
    public init(
        state: AgentState, consent: any ConsentProvider, screen: ScreenBackend, logger: Logger
    ) throws(AgentError) {
        let (key, enrollment) = try state.load()
        self.invitations = InvitationStore(state: state)
        self.keyBytes = key.rawRepresentation
        self.enrollment = enrollment
        self.consent = consent
        self.screen = screen
        self.logger = logger
    }

    private var key: P256.Signing.PrivateKey {
        // The bytes came from a valid key.
        try! P256.Signing.PrivateKey(rawRepresentation: keyBytes)
    }

    /// Whether the helper of `session` has control right now, by the agent's own record.
    public func hasControl(in session: UUID) -> Bool {
        sessions.withLock { $0[session]?.hasControl ?? false }
    }

    /// Stays connected until cancelled, or until the server says this machine may no longer connect.
    /// - Throws: `AgentError.refused` when the server refused the machine (revoked, not enrolled, wrong key).
    public func run() async throws(AgentError) {
        var failures = 0
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await connectOnce()
            } catch let error as AgentError {
                throw error
            } catch {
                logger.warning("connection to the server lost", metadata: ["error": "\(error)"])
            }
            let lost = sessions.withLock { sessions in
                defer { sessions.removeAll() }
                return sessions.values.compactMap { local in local.window.map { ($0, local.offer.helper) } }
            }
            stopScreens { _ in true }
            for (window, helper) in lost {
                window.close(note: SessionView.endNote(.agentDisconnected, helper: helper, at: Date(), in: .current))
            }
            if ContinuousClock.now - started > .seconds(30) { failures = 0 }
            failures += 1
            let delay = Self.backOff(after: failures)
            logger.info("reconnecting", metadata: ["delay.ms": "\(delay.components.seconds * 1000)"])
            do {
                try await Task.sleep(for: delay)
            } catch {
                return
            }
        }
    }

    /// The wait before reconnecting after `failures` failures in a row: doubling from 1 s up to 60 s, each a
    /// random 50–100 % of that, so agents that lost the same server spread out.
    public static func backOff(after failures: Int) -> Duration {
        let ceiling = min(60.0, pow(2.0, Double(max(0, failures - 1))))
        return .milliseconds(Int64(ceiling * Double.random(in: 0.5...1.0) * 1000))
    }

    private func socketURL(_ path: String) -> String {
        let base = enrollment.server
        let scheme = base.hasPrefix("https://") ? "wss://" : "ws://"
        let rest = base.drop { $0 != ":" }.dropFirst(3)
        return scheme + rest + path
    }

    private var tlsConfiguration: TLSConfiguration? {
        guard enrollment.server.hasPrefix("https://") else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = enrollment.caFile { configuration.trustRoots = .file(caFile) }
        return configuration
    }

    private var serverName: String {
        var host = URLComponents(string: enrollment.server)?.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host
    }

    private func connectOnce() async throws {
        let refusal = Mutex<AgentError?>(nil)
        try await WebSocketClient.connect(
            url: socketURL("/agent/v1/connect"), configuration: .init(maxFrameSize: AgentProtocol.maximumFrameSize),
            tlsConfiguration: tlsConfiguration, logger: logger
        ) { inbound, outbound, _ in
            do {
                try await self.converse(inbound: inbound, outbound: outbound)
            } catch let error as AgentError {
                refusal.withLock { $0 = error }
            }
        }
        if let error = refusal.withLock({ $0 }) { throw error }
    }

    private func converse(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        var messages = inbound.messages(maxSize: AgentProtocol.maximumFrameSize).makeAsyncIterator()
        @Sendable func send(_ message: AgentProtocol.AgentMessage) async throws {
            try await outbound.write(.text(String(decoding: AgentProtocol.encode(message), as: UTF8.self)))
        }
        func next() async throws -> AgentProtocol.ServerMessage? {
            guard let message = try await messages.next() else { return nil }
            guard case .text(let text) = message else { return nil }
            return try AgentProtocol.decodeServerMessage(Array(text.utf8))
        }

        try await send(
            .hello(
                machine: enrollment.machine, agentVersion: AgentInfo.version, operatingSystem: Enroller.operatingSystem)
        )
        switch try await next() {
        case .challenge(let nonce):
            let statement = AgentAuthentication(server: serverName, machine: enrollment.machine, nonce: nonce)
            try await send(.authenticate(signature: try statement.sign(with: key)))
        case .error(let code, let message):
            throw AgentError.refused(status: 403, message: "\(message) (\(code))")
        default:
            return
        }
        switch try await next() {
        case .welcome:
            logger.notice(
                "connected", metadata: ["server": "\(enrollment.server)", "machine": "\(enrollment.machine)"])
        case .error(let code, let message):
            throw AgentError.refused(status: 403, message: "\(message) (\(code))")
        default:
            return
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            reporting.withLock { $0.removeAll() }
            group.addTask {
                // What became of the invitations (made, revoked, expired, also while offline) reaches the record.
                while !Task.isCancelled {
                    try await self.reportInvitations(send: send)
                    try await Task.sleep(for: .seconds(2))
                }
            }
            while let message = try await next() {
                switch message {
                case .offer(let offer):
                    guard offer.machine == enrollment.machine.lowercased() else { continue }
                    if let invitation = offer.invitation {
                        // Only an invitation this machine let through, for the helper it let through.
                        let admission = admitted.withLock { $0.removeValue(forKey: offer.session) }
                        guard let admission, admission.invitation == invitation,
                            admission.operatorDN.lowercased() == offer.helper.dn.lowercased()
                        else {
                            logger.warning(
                                "refusing an offer that names an invitation this machine did not let through",
                                metadata: ["session.id": "\(offer.session)"])
                            continue
                        }
                    }
                    sessions.withLock { $0[offer.session] = LocalSession(offer: offer) }
                    try await send(.offerReceived(session: offer.session))
                    group.addTask {
                        try await self.answer(
                            ConsentQuestion(kind: .session, request: 0, offer: offer),
                            timeout: .seconds(offer.consentTimeoutSeconds), send: send)
                    }
                case .controlRequest(let id, let request):
                    guard let local = sessions.withLock({ $0[id] }), local.accepted, local.offer.mode == .control
                    else { continue }
                    group.addTask {
                        try await self.answer(
                            ConsentQuestion(kind: .control, request: request, offer: local.offer),
                            timeout: .seconds(local.offer.consentTimeoutSeconds), send: send)
                    }
                case .controlRevoked(let id):
                    update(id) { local in
                        local.hasControl = false
                    }
                case .openScreen(let id, let ticket, let port):
                    guard sessions.withLock({ $0[id]?.accepted == true }) else {
                        logger.warning("refusing to open the screen of a session not accepted here")
                        continue
                    }
                    let task = Task { await self.showScreen(of: id, ticket: ticket, port: port) }
                    screens.withLock { $0[id, default: []].append(task) }
                case .endSession(let id, let reason):
                    let ended = sessions.withLock { $0.removeValue(forKey: id) }
                    stopScreens { $0 == id }
                    if let ended, let window = ended.window {
                        window.close(
                            note: SessionView.endNote(reason, helper: ended.offer.helper, at: Date(), in: .current))
                    }
                    logger.notice("session ended", metadata: ["session.id": "\(id)", "reason": "\(reason.rawValue)"])
                case .chat(let id, let message):
                    update(id) { local in local.view?.receive(message) }
                case .chatRefused(let id, let reason):
                    update(id) { local in local.view?.refuseOldestSending(because: reason) }
                case .error(let code, let message):
                    logger.warning(
                        "the server reported an error", metadata: ["code": "\(code)", "message": "\(message)"])
                case .openInvitation(let invitation, let session, let operatorDN):
                    try await send(openInvitation(invitation, session: session, by: operatorDN))
                case .invitationProof(let challenge, let proof):
                    try await send(.invitationDecision(try checkProof(proof, of: challenge)))
                case .invitationRecorded(let invitation, let status):
                    reporting.withLock { _ = $0.remove("\(invitation)/\(status)") }
                    try? invitations.noteReported(invitation, status: status)
                case .challenge, .welcome:
                    continue
                }
            }
            group.cancelAll()
        }
    }

    /// Sends the reports the server has not acknowledged, each once per connection.
    private func reportInvitations(send: @Sendable (AgentProtocol.AgentMessage) async throws -> Void) async throws {
        guard let due = try? invitations.unreported(at: Date()) else { return }
        for (signed, status) in due {
            let key = "\(signed.invitation.id)/\(status)"
            guard reporting.withLock({ $0.insert(key).inserted }) else { continue }
            try await send(.invitationReport(signed, status: status))
        }
    }

    /// A helper opens invitation `id` for `session`: the machine's store decides whether it may be used; one with a
    /// password gets a fresh challenge, one without is let through at once.
    private func openInvitation(
        _ id: UUID, session: UUID, by operatorDN: String
    ) throws -> AgentProtocol.AgentMessage {
        let metadata: Logger.Metadata = ["invitation.id": "\(id)", "session.id": "\(session)"]
        let challenge: InvitationPassword.Challenge?
        do throws(InvitationError) {
            challenge = try invitations.begin(id, session: session, by: operatorDN, at: Date())
        } catch {
            logger.notice(
                "refused to open an invitation", metadata: metadata.merging(["reason": "\(error.code)"]) { $1 })
            return .invitationDecision(
                try decision(id, session: session, by: operatorDN, outcome: .refused, reason: error, failures: 0))
        }
        guard let challenge else {
            admitted.withLock { $0[session] = (id, operatorDN) }
            logger.notice("an invitation without a password was opened", metadata: metadata)
            return .invitationDecision(
                try decision(id, session: session, by: operatorDN, outcome: .accepted, reason: nil, failures: 0))
        }
        challenges.withLock { $0[session] = challenge }
        return .invitationChallenge(challenge)
    }

    /// Checks the helper's answer to a challenge this agent sent (each is answered once), and signs the verdict.
    private func checkProof(
        _ proof: InvitationPassword.SealedProof, of challenge: InvitationPassword.Challenge
    ) throws -> InvitationDecision {
        let sent = challenges.withLock { $0.removeValue(forKey: challenge.session) }
        guard sent == challenge else {
            return try decision(
                challenge.invitation, session: challenge.session, by: challenge.operatorDN, outcome: .refused,
                reason: .unknown, failures: 0)
        }
        let verdict = invitations.answer(challenge, with: proof, deviceKey: key, at: Date())
        if verdict.outcome == .accepted {
            admitted.withLock { $0[challenge.session] = (challenge.invitation, challenge.operatorDN) }
        }
        logger.notice(
            "checked a helper's password for an invitation",
            metadata: [
                "invitation.id": "\(challenge.invitation)", "outcome": "\(verdict.outcome.rawValue)",
                "failures": "\(verdict.failures)",
            ])
        return try decision(
            challenge.invitation, session: challenge.session, by: challenge.operatorDN, outcome: verdict.outcome,
            reason: verdict.reason, failures: verdict.failures)
    }

    private func decision(
        _ id: UUID, session: UUID, by operatorDN: String, outcome: InvitationDecision.Outcome,
        reason: InvitationError?, failures: Int
    ) throws -> InvitationDecision {
        try InvitationDecision(
            machine: enrollment.machine.lowercased(), invitation: id, session: session, operatorDN: operatorDN,
            outcome: outcome, reason: reason?.code, failures: failures, at: AuditTimestamp(Date()), signingWith: key)
    }

    /// Asks the person at the machine and sends the signed answer, unless the session ended meanwhile.
    private func answer(
        _ question: ConsentQuestion,
        timeout: Duration,
        send: @Sendable (AgentProtocol.AgentMessage) async throws -> Void
    ) async throws {
        let id = question.offer.session
        guard let answer = await consent.ask(question, timeout: timeout) else {
            // Nobody answered: nothing is signed, and the server's deadline declines it.
            if question.kind == .session { sessions.withLock { $0[id] = nil } }
            logger.notice(
                "nobody answered in time", metadata: ["session.id": "\(id)", "question": "\(question.kind.rawValue)"])
            return
        }
        let stillOpen = sessions.withLock { sessions -> Bool in
            guard sessions[id] != nil else { return false }
            switch (question.kind, answer) {
            case (.session, .granted):
                sessions[id]?.accepted = true
                // From now on every change is noted in what the person is shown, even before the window is up.
                sessions[id]?.view = SessionView(offer: question.offer, acceptedAt: Date())
            case (.session, .declined): sessions[id] = nil
            case (.control, .granted): sessions[id]?.hasControl = true
            case (.control, .declined): break
            }
            return true
        }
        guard stillOpen else { return }
        if question.kind == .control, answer == .granted {
            // The person sees it before the helper's input can arrive (that waits for the signed answer).
            update(id) { _ in }
        }
        logger.notice(
            "the person at the machine answered",
            metadata: ["session.id": "\(id)", "question": "\(question.kind.rawValue)", "answer": "\(answer.rawValue)"])
        let receipt = try ConsentReceipt(
            answering: question.kind, request: question.request, of: question.offer, answer: answer,
            at: AuditTimestamp(Date()), signingWith: key)
        try await send(.consent(receipt))
        if question.kind == .session, answer == .granted {
            try await showSession(question.offer, send: send)
        }
    }

    /// Applies `change` to the session `id`, if it is still open here, and shows the person the result: what they
    /// are shown follows the agent's record of control, whatever changed it.
    private func update(_ id: UUID, _ change: (inout LocalSession) -> Void) {
        let shown = sessions.withLock { sessions -> (SessionView, any SessionWindow)? in
            guard var local = sessions[id] else { return nil }
            change(&local)
            local.view?.setControl(local.hasControl, at: Date())
            local.view?.revision += 1
            sessions[id] = local
            guard let view = local.view, let window = local.window else { return nil }
            return (view, window)
        }
        if let (view, window) = shown { window.show(view) }
    }

    /// Shows the person the session they accepted, until it ends, and acts on what they do there. A window that
    /// goes away without the agent closing it ends the session: the screen is never shared without it.
    private func showSession(
        _ offer: Offer, send: @Sendable (AgentProtocol.AgentMessage) async throws -> Void
    ) async throws {
        let id = offer.session
        guard let view = sessions.withLock({ $0[id]?.view }), let window = await consent.openWindow(view) else {
            return
        }
        // What changed while the window was starting is shown at once.
        let latest = sessions.withLock { sessions -> SessionView? in
            sessions[id]?.window = window
            return sessions[id]?.view
        }
        guard let latest else {
            window.close(note: "The session ended.")
            return
        }
        window.show(latest)
        for await action in window.actions {
            switch action {
            case .shown:
                try await send(.presence(session: id, presence: PersonPresence(window: true, typing: false)))
            case .typing(let typing):
                try await send(.presence(session: id, presence: PersonPresence(window: true, typing: typing)))
            case .stopControl(let method):
                try await takeControlBack(id, method: method, send: send)
            case .chat(let text):
                do throws(ChatLineError) {
                    _ = try ChatLine(text)
                } catch {
                    update(id) { local in local.view?.notice = "Not sent: \(error.description)" }
                    continue
                }
                update(id) { local in local.view?.write(text, at: Date()) }
                try await send(.chat(session: id, text: text))
            case .endSession:
                try await endedByThePerson(id, send: send, windowGone: false)
            case .gone:
                try await endedByThePerson(id, send: send, windowGone: true)
            }
        }
    }

    /// The person took control back: the agent drops control first, then tells the server.
    private func takeControlBack(
        _ id: UUID, method: ControlStopMethod, send: @Sendable (AgentProtocol.AgentMessage) async throws -> Void
    ) async throws {
        let wasControlling = sessions.withLock { sessions -> Bool in
            sessions[id]?.hasControl == true
        }
        guard wasControlling else { return }
        update(id) { local in
            local.hasControl = false
        }
        logger.notice("control taken back", metadata: ["session.id": "\(id)", "how": "\(method.rawValue)"])
        try await send(.controlStopped(session: id, method: method))
    }

    /// The person ended the session, or their window went away: it ends for everyone at once.
    private func endedByThePerson(
        _ id: UUID, send: @Sendable (AgentProtocol.AgentMessage) async throws -> Void, windowGone: Bool
    ) async throws {
        guard let ended = sessions.withLock({ $0.removeValue(forKey: id) }) else { return }
        stopScreens { $0 == id }
        if windowGone {
            logger.warning(
                "the session window went away while the session went on: ending the session",
                metadata: ["session.id": "\(id)"])
        } else {
            logger.notice("the person at the machine ended the session", metadata: ["session.id": "\(id)"])
            ended.window?.close(
                note: SessionView.endNote(.noviceEnded, helper: ended.offer.helper, at: Date(), in: .current))
        }
        try await send(.sessionEnded(session: id))
    }
}

// MARK: The screen

extension AgentRunner {
    /// Stops the screen connections of the sessions `matching` picks.
    private func stopScreens(matching: (UUID) -> Bool) {
        let stopped = screens.withLock { screens in
            let ids = screens.keys.filter(matching)
            return ids.flatMap { screens.removeValue(forKey: $0) ?? [] }
        }
        for task in stopped { task.cancel() }
    }

    /// How long a connection that told the viewer why there is no screen waits for the viewer to go.
    static let refusalLinger = Duration.seconds(10)

    /// Shows the screen to one viewer of `session`: starts the screen backend, opens a stream to the server's relay
    /// `port` with `ticket`, and relays until either side ends. The helper's input reaches the backend only while
    /// this agent's own record says control is granted; anything else is dropped here, whatever the server says.
    func showScreen(of session: UUID, ticket: String, port: Int) async {
        let metadata: Logger.Metadata = ["session.id": "\(session)"]
        do {
            let tls = try tlsConfiguration.map { try NIOSSLContext(configuration: $0) }
            let channel = try await ScreenStream.connect(host: serverName, port: port, tls: tls)
            try await channel.executeThenClose { inbound, outbound in
                var fromServer = inbound.makeAsyncIterator()
                let rest = try await ScreenStream.open(
                    leg: .agent, ticket: ticket, write: { try await outbound.write($0) },
                    next: { try await fromServer.next() })
                let running: RunningScreen
                do {
                    running = try await self.screen.start()
                } catch {
                    logger.error(
                        "cannot start the screen backend", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    // The helper's viewer is told why, in RFB's words, instead of seeing the connection drop: the
                    // version, the viewer's answer, then the reason; the connection stays until the viewer has gone,
                    // at most `refusalLinger`.
                    let server = channel.channel
                    let linger = Task {
                        try? await Task.sleep(for: Self.refusalLinger)
                        try? await server.close()
                    }
                    defer { linger.cancel() }
                    try? await outbound.write(ByteBuffer(bytes: RFBRefusal.greeting))
                    guard (try? await fromServer.next()) != nil else { return }
                    try? await outbound.write(
                        ByteBuffer(
                            bytes: RFBRefusal.failure(
                                reason: "the machine could not start its screen program (\(self.screen.summary)): "
                                    + "\(error); `ora-agent doctor` on the machine says how to fix it")))
                    while (try? await fromServer.next()) != nil {}
                    return
                }
                let helper = sessions.withLock { $0[session]?.offer.helper }
                let who = helper?.nameText ?? "the helper"
                logger.notice("\(who) now sees your screen", metadata: metadata)
                update(session) { local in local.view?.viewerAttached(at: Date()) }
                var pending: ByteBuffer? = rest.readableBytes > 0 ? rest : nil
                // However the relay ends (the viewer left, the session ended and this task was cancelled, an
                // error), the backend is stopped and the person is told.
                do {
                    try await self.relay(session, running: running, outbound: outbound, server: channel.channel) {
                        if let first = pending {
                            pending = nil
                            return first
                        }
                        return try await fromServer.next()
                    }
                } catch {
                    logger.debug("screen relay ended", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                }
                await running.stop()
                logger.notice("\(who) no longer sees your screen", metadata: metadata)
                update(session) { local in local.view?.viewerLeft(at: Date()) }
            }
        } catch {
            logger.warning("screen connection ended", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
    }

    private func relay(
        _ session: UUID, running: RunningScreen, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        server: any Channel, next: () async throws -> ByteBuffer?
    ) async throws {
        let channel = running.channel!
        let backend = screen.summary
        // Set when the backend stopped before it showed anything: the rest of the refusal, sent once the viewer has
        // answered the version.
        let refusal = PendingRefusal()
        try await channel.executeThenClose { fromBackend, toBackend in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Desktop to viewer: as the backend writes it; when the backend stops, the connection closes. A
                // backend that stops before it wrote anything could not show the screen: the viewer is told why.
                group.addTask {
                    var shown = false
                    for try await buffer in fromBackend {
                        shown = true
                        try await outbound.write(buffer)
                    }
                    if !shown {
                        let status = await running.exitStatus(within: .seconds(2))
                        let ended = status.map { "ended with status \($0)" } ?? "closed its connection"
                        refusal.bytes.withLock {
                            $0 = RFBRefusal.failure(
                                reason: "the machine's screen program (\(backend)) \(ended) before showing the "
                                    + "screen: it may have no display it can open (an X11 session, its X "
                                    + "authority); `ora-agent doctor` on the machine says what is wrong")
                        }
                        try? await outbound.write(ByteBuffer(bytes: RFBRefusal.greeting))
                        // The loop below sends the rest when the viewer answers, and ends the relay; at most
                        // `refusalLinger` is waited for that.
                        try? await Task.sleep(for: Self.refusalLinger)
                    }
                    try? await server.close()
                }
                // Viewer to desktop: through this agent's own input filter.
                var filter = RFBClientStreamFilter()
                var reported = false
                /// Releases the keys and buttons the helper's input holds down, where a message may be put in.
                func releaseHeld() async throws {
                    guard filter.holdsInput, filter.isAtMessageBoundary else { return }
                    logger.notice(
                        "releasing the keys and buttons the helper held when control ended",
                        metadata: ["session.id": "\(session)"])
                    try await toBackend.write(ByteBuffer(bytes: filter.releaseHeldInput()))
                }
                do {
                    while let buffer = try await next() {
                        if let failure = refusal.bytes.withLock({ $0 }) {
                            try? await outbound.write(ByteBuffer(bytes: failure))
                            break
                        }
                        guard sessions.withLock({ $0[session]?.accepted == true }) else { break }
                        let control = hasControl(in: session)
                        // Control ended: nothing the helper held down stays pressed on the machine.
                        if !control { try await releaseHeld() }
                        filter.controlGranted = control
                        let passed = try filter.filter(buffer.readableBytesView)
                        if filter.droppedInputMessages > 0, !reported {
                            reported = true
                            logger.notice(
                                "dropping the helper's input: control is not granted",
                                metadata: ["session.id": "\(session)"])
                        }
                        if !passed.isEmpty { try await toBackend.write(ByteBuffer(bytes: passed)) }
                    }
                    // The viewer left (or the session ended): the same.
                    try await releaseHeld()
                } catch let error as RFBStreamError {
                    logger.warning(
                        "closing a screen connection that broke the RFB protocol",
                        metadata: ["session.id": "\(session)", "error": "\(error)"])
                }
                group.cancelAll()
            }
        }
    }
}

/// The rest of a screen's refusal, noted by the relay's desktop side for its viewer side to send.
private final class PendingRefusal: Sendable {
    let bytes = Mutex<[UInt8]?>(nil)
}
