import NIOCore
import ORACore
import Synchronization

/// The agents connected to this server, one link each: whom the broker can send to. `AgentGateway` adds and removes
/// the links as connections come and go; everything else only sends.
final class AgentLinks: Sendable {
    struct Link: Sendable {
        let channel: any Channel
        /// The connection's inbox, which also tells this connection from a newer one of the same machine.
        let inbox: AgentInbox
        /// The device key the agent proved it holds when it connected (`DevicePublicKey` text): the machine's
        /// enrolled key then. Only a revocation or a re-key changes that, and each closes this connection.
        let publicKey: String
    }

    private let links = Mutex<[String: Link]>([:])

    /// How many agents are connected to this server.
    var count: Int {
        links.withLock { $0.count }
    }

    /// Whether `machine`'s agent is connected to this server.
    func isOnline(_ machine: String) -> Bool {
        links.withLock { $0[machine] != nil }
    }

    /// The device key `machine`'s agent proved it holds when it connected here, while it is connected here.
    func publicKey(of machine: String) -> String? {
        links.withLock { $0[machine]?.publicKey }
    }

    /// Every machine connected here, with the device key its agent proved.
    var provenKeys: [String: String] {
        links.withLock { $0.mapValues(\.publicKey) }
    }

    /// Sends `message` to `machine`'s agent.
    /// - Returns: `false` when the agent is not connected here or the send failed.
    func send(_ message: AgentProtocol.ServerMessage, to machine: String) async -> Bool {
        guard let link = links.withLock({ $0[machine] }) else { return false }
        do {
            try await link.channel.writeAndFlush(AgentConnectionHandler.frame(message)).get()
            return true
        } catch {
            return false
        }
    }

    /// Makes `link` the machine's link.
    /// - Returns: the link it replaces, if any.
    func add(_ link: Link, for machine: String) -> Link? {
        links.withLock { $0.updateValue(link, forKey: machine) }
    }

    /// Removes the machine's link, whichever connection it is.
    func remove(_ machine: String) -> Link? {
        links.withLock { $0.removeValue(forKey: machine) }
    }

    /// Removes the machine's link if its agent proved `key` (not a newer connection with another key).
    /// - Returns: the link removed, if any.
    func remove(_ machine: String, ifProven key: String) -> Link? {
        links.withLock { links in
            guard links[machine]?.publicKey == key else { return nil }
            return links.removeValue(forKey: machine)
        }
    }

    /// Removes the machine's link if it is still the connection of `inbox` (not a newer one).
    /// - Returns: whether it was.
    func remove(_ machine: String, ifFrom inbox: AgentInbox) -> Bool {
        links.withLock { links in
            guard links[machine]?.inbox === inbox else { return false }
            links[machine] = nil
            return true
        }
    }
}
