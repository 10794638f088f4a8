import Foundation
import Logging
import NIOCore
import NIOWebSocket
import ORACore
import ORAStore
public import ServiceLifecycle
import Synchronization

/// The agents' connections to this server: each agent keeps one WebSocket open (`AgentConnectionHandler`), proves
/// its device key on every connection, and then receives offers over it. The gateway keeps `AgentLinks` up to date,
/// hands the agents' messages to the broker, and, as a service, lets the server stop only once the agents'
/// disconnections are handled (their sessions end as `server_restart`).
public final class AgentGateway: Service, Sendable {
    /// Where agents connect.
    static let path = "/agent/v1/connect"
    /// How long an agent has for the handshake.
    static let handshakeTimeout = TimeAmount.seconds(10)

    private let links: AgentLinks
    private let messages: AgentMessages
    private let broker: SessionBroker
    private let machines: MachineStore
    private let replicas: ReplicaStore
    /// This replica's id, as connections are recorded for other replicas.
    private let instance: UUID
    /// The names agents may address this server by; a handshake's signature is good for any of them.
    let serverNames: [String]
    /// What pings the connected agents, every `agents.ping_interval`; one that has not answered by the next ping
    /// is disconnected.
    let pings: AgentPings
    /// How often the agents connected here are checked against their enrollments.
    private let enrollmentCheckInterval: Duration
    let logger: Logger
    private let clock: ServerClock
    /// Connections authenticated and not yet handled as gone.
    private let open = Mutex(0)

    /// Creates the gateway.
    /// - Parameters:
    ///   - links: the links it keeps, through which the broker sends.
    ///   - messages: what the agents' messages go to.
    ///   - broker: who hears of their disconnections, and ends their sessions.
    ///   - settings: the names agents may address this server by, and how often they are pinged.
    ///   - replicas: where connections are recorded (as this replica, `instance`), so other replicas can route here.
    init(
        links: AgentLinks, messages: AgentMessages, broker: SessionBroker, machines: MachineStore,
        replicas: ReplicaStore, instance: UUID,
        settings: AgentSettings, clock: ServerClock, logger: Logger
    ) {
        self.links = links
        self.messages = messages
        self.broker = broker
        self.clock = clock
        self.machines = machines
        self.replicas = replicas
        self.instance = instance
        serverNames = settings.serverNames
        pings = AgentPings(interval: TimeAmount(settings.pingInterval))
        enrollmentCheckInterval = settings.enrollmentCheckInterval
        self.logger = logger
    }

    /// Checks the agents connected here against their enrollments every `enrollmentCheckInterval` until the server
    /// stops, then waits until the disconnections of its agents (which the server closes when it stops) are
    /// handled, for at most 10 seconds.
    public func run() async throws {
        for await _ in Ticks.every(enrollmentCheckInterval) {
            await closeChangedEnrollments()
        }
        for _ in 0..<200 {
            if open.withLock({ $0 }) == 0 { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Closes the connection of every agent here whose machine is no longer enrolled with the key it proved (revoked,
    /// re-keyed or removed), and ends its sessions. A revocation or re-key closes the connection at once; this
    /// closes the ones whose closing did not reach this server. When the database cannot answer, the next check
    /// tries again.
    func closeChangedEnrollments() async {
        let proven = links.provenKeys
        guard !proven.isEmpty else { return }
        let enrollments: [String: MachineStore.Enrollment]
        do {
            enrollments = try await machines.enrollments(of: Array(proven.keys))
        } catch {
            logger.warning(
                "could not check the connected agents' enrollments; trying again at the next check",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            return
        }
        for (machine, key) in proven {
            guard MachineStore.Enrollment.change(since: key, to: enrollments[machine]) != nil else { continue }
            // Only the connection that was checked: a newer one (with the new key) may have replaced it meanwhile.
            guard let link = links.remove(machine, ifProven: key) else { continue }
            logger.warning(
                "closing the connection of an agent whose machine is no longer enrolled with its key",
                metadata: ["machine": "\(machine)"])
            await close(link, of: machine)
        }
    }

    /// Closes the connection of `machine`'s agent, if it has one here, and ends its sessions at once.
    func disconnectHere(_ machine: String) async {
        guard let link = links.remove(machine) else { return }
        await close(link, of: machine)
    }

    /// Closes `link`, removed already, as revoked, and ends `machine`'s sessions at once. The connection's own end
    /// finds its link gone, so the machine's row is told here, unless a newer connection has come meanwhile.
    private func close(_ link: AgentLinks.Link, of machine: String) async {
        link.channel.pipeline.fireUserInboundEventTriggered(
            AgentConnectionHandler.Close(code: .policyViolation, reason: "revoked"))
        await broker.agentDisconnected(machine, serverStopping: false)
        if !links.isOnline(machine) { await recordDisconnection(of: machine) }
    }

    /// Records that `machine`'s agent is no longer connected here. Not an audit record: the machine's presence for
    /// other replicas and the machine list. Its sessions end either way; while the row says otherwise, an offer
    /// routed here finds no agent and is refused as offline.
    private func recordDisconnection(of machine: String) async {
        do {
            try await replicas.recordDisconnection(of: machine, from: instance, at: clock.now())
        } catch {
            logger.warning(
                "could not record an agent's disconnection; offers routed here for it are refused as offline",
                metadata: ["machine": "\(machine)", "error": "\(DatabaseErrorDescription.describe(error))"])
        }
    }

    // MARK: From the connections

    static let notEnrolled =
        "this machine is not enrolled, or its enrollment was revoked; an administrator can re-key it (ora agents rekey)"

    /// The enrolled machine `name` (as the agent spelt it), or why an agent saying it is that machine is refused.
    func enrolledMachine(_ name: String) async -> AgentHandshake.LookUp {
        do {
            // Unknown and revoked names get the same answer: a connection learns nothing about which names exist.
            guard let enrolled = try await machines.machine(named: name.lowercased()), enrolled.revokedAt == nil else {
                return .refused(code: "not_enrolled", text: Self.notEnrolled)
            }
            // A key that cannot be read refuses the machine now rather than after its answer.
            _ = try DevicePublicKey.parse(enrolled.publicKey)
            return .enrolled(name: enrolled.name, publicKey: enrolled.publicKey)
        } catch {
            logger.warning(
                "could not look up a connecting agent's machine",
                metadata: ["error": "\(DatabaseErrorDescription.describe(error))"])
            return .refused(code: "protocol", text: "the handshake failed")
        }
    }

    /// Takes `machine`'s authenticated connection as its agent's link here, closing an older one.
    func connected(_ machine: String, publicKey: String, channel: any Channel, inbox: AgentInbox, source: String) {
        open.withLock { $0 += 1 }
        let replaced = links.add(
            AgentLinks.Link(channel: channel, inbox: inbox, publicKey: publicKey), for: machine)
        replaced?.channel.pipeline.fireUserInboundEventTriggered(
            AgentConnectionHandler.Close(code: .goingAway, reason: "replaced by a newer connection"))
        deliver(.connected, from: machine, inbox: inbox, source: source)
    }

    /// Queues `item` of `machine`'s connection; a task handles the queue while it is not empty.
    /// - Returns: false when the agent has too many messages waiting (`AgentInbox.limit`); the item is dropped.
    @discardableResult
    func deliver(_ item: AgentInbox.Item, from machine: String, inbox: AgentInbox, source: String) -> Bool {
        switch inbox.push(item) {
        case .full: return false
        case .queued: return true
        case .drain:
            Task {
                while let item = inbox.next() {
                    await handle(item, from: machine, inbox: inbox, source: source)
                }
            }
            return true
        }
    }

    private func handle(_ item: AgentInbox.Item, from machine: String, inbox: AgentInbox, source: String) async {
        switch item {
        case .connected:
            // A revocation between the handshake's look-up and this link found no link to close; it does now.
            if let enrolled = try? await machines.machine(named: machine), enrolled.revokedAt != nil {
                await disconnectHere(machine)
                return
            }
            do {
                try await replicas.recordConnection(of: machine, to: instance, at: clock.now())
            } catch {
                logger.warning(
                    "could not record an agent's connection; other servers will see it offline",
                    metadata: ["machine": "\(machine)", "error": "\(DatabaseErrorDescription.describe(error))"])
            }
        case .message(let message):
            await messages.handle(message, from: machine, source: source)
        case .disconnected(let serverStopping):
            if links.remove(machine, ifFrom: inbox) {
                logger.notice("agent disconnected", metadata: ["machine": "\(machine)"])
                await recordDisconnection(of: machine)
                await broker.agentDisconnected(machine, serverStopping: serverStopping)
            }
            open.withLock { $0 -= 1 }
        }
    }
}
