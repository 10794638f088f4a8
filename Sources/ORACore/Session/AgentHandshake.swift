/// The server's side of an agent's connection, message by message: `hello` names the machine, which the server looks
/// up; a challenge goes out; `authenticate` must be that challenge signed with the machine's enrolled device key for
/// one of the server's names; after that every message is the agent's to deliver. Anything out of turn refuses the
/// connection, and an unknown or revoked machine gets the same refusal, so a connection learns nothing about which
/// names exist.
///
/// Pure: the connection's handler does what each step returns (look the machine up, write, deliver, close), and
/// reports what it learned back (`lookedUp`).
public struct AgentHandshake: Sendable {
    /// Where the connection stands.
    public enum Phase: Sendable, Hashable {
        /// Waiting for `hello`.
        case awaitingHello
        /// The machine `hello` named is being looked up.
        case lookingUp(machine: String)
        /// The challenge is out; waiting for its signed answer.
        case awaitingAnswer(machine: String)
        /// Authenticated: the agent of `machine`.
        case connected(machine: String)
        /// Refused or closed: nothing more is read.
        case closed
    }

    /// What the handler does next.
    public enum Action: Sendable, Hashable {
        /// Look up the machine (`lookedUp` reports what was found).
        case lookUp(machine: String)
        /// Send the challenge.
        case challenge(nonce: String)
        /// Send the welcome: `machine` (as enrolled, with the device key `publicKey` it proved it holds) is online,
        /// with the agent's version and system as it reported them.
        case welcome(machine: String, publicKey: String, agentVersion: String, operatingSystem: String)
        /// Hand the message to the broker, in order.
        case deliver(AgentProtocol.AgentMessage)
        /// Tell the agent why (`error`) and close the connection.
        case refuse(code: String, text: String)
        /// Nothing: the connection is closed already, or the step was the handler's own.
        case nothing
    }

    /// What the look-up found.
    public enum LookUp: Sendable, Hashable {
        /// The machine is enrolled under `name` with the device key `publicKey` (`DevicePublicKey` text).
        case enrolled(name: String, publicKey: String)
        /// The machine may not connect (unknown, revoked, or the look-up failed), for this reason.
        case refused(code: String, text: String)
    }

    /// The refusal of an agent that does not follow the protocol, before it is authenticated: it says no more.
    public static let handshakeFailed = Action.refuse(code: "protocol", text: "the handshake failed")

    /// The names the server answers to; a signature for any of them is good.
    public let serverNames: [String]
    /// Where the connection stands.
    public private(set) var phase = Phase.awaitingHello
    /// What `hello` said: the machine's name as the agent gives it (and signs), its version and system.
    private var hello: (machine: String, version: String, system: String) = ("", "", "")
    /// The machine as enrolled, and the challenge sent.
    private var expected: (name: String, publicKey: String, nonce: String)?

    /// Starts the handshake of a new connection to a server called by `serverNames`.
    public init(serverNames: [String]) {
        self.serverNames = serverNames
    }

    /// Reads the agent's next message, or the reason it could not be decoded.
    public mutating func received(_ message: Result<AgentProtocol.AgentMessage, AgentProtocol.DecodingError>) -> Action
    {
        switch (phase, message) {
        case (.closed, _):
            return .nothing
        case (.connected, .failure(let error)):
            return refuse(code: "protocol", text: error.description)
        case (.connected, .success(let message)):
            return .deliver(message)
        case (_, .failure):
            return refuse(Self.handshakeFailed)
        case (.awaitingHello, .success(.hello(let machine, let version, let system))):
            phase = .lookingUp(machine: machine)
            hello = (machine, version, system)
            return .lookUp(machine: machine)
        case (.awaitingHello, .success):
            return refuse(code: "protocol", text: "the first message must be hello")
        case (.lookingUp, .success):
            return refuse(Self.handshakeFailed)
        case (.awaitingAnswer, .success(.authenticate(let signature))):
            guard let expected, isAuthentic(signature, by: expected) else {
                return refuse(
                    code: "authentication_failed", text: "the answer is not signed with the enrolled device key")
            }
            phase = .connected(machine: expected.name)
            return .welcome(
                machine: expected.name, publicKey: expected.publicKey, agentVersion: hello.version,
                operatingSystem: hello.system)
        case (.awaitingAnswer, .success):
            return refuse(code: "protocol", text: "the second message must be authenticate")
        }
    }

    /// Takes what the look-up found; `nonce` is the fresh challenge to send (`AgentAuthentication.makeNonce()`).
    public mutating func lookedUp(_ found: LookUp, nonce: String) -> Action {
        guard case .lookingUp = phase else { return .nothing }
        switch found {
        case .enrolled(let name, let publicKey):
            expected = (name, publicKey, nonce)
            phase = .awaitingAnswer(machine: name)
            return .challenge(nonce: nonce)
        case .refused(let code, let text):
            return refuse(code: code, text: text)
        }
    }

    /// The handler closed the connection (a timeout, a ping unanswered, the server stopping).
    public mutating func close() {
        phase = .closed
    }

    /// Whether `signature` is the challenge signed with the enrolled key, for the machine as `hello` named it and
    /// one of the server's names.
    private func isAuthentic(_ signature: String, by expected: (name: String, publicKey: String, nonce: String)) -> Bool
    {
        guard let key = try? DevicePublicKey.parse(expected.publicKey) else { return false }
        return serverNames.contains {
            AgentAuthentication(server: $0, machine: hello.machine, nonce: expected.nonce)
                .isValid(signature: signature, for: key)
        }
    }

    private mutating func refuse(code: String, text: String) -> Action {
        refuse(.refuse(code: code, text: text))
    }

    private mutating func refuse(_ action: Action) -> Action {
        phase = .closed
        return action
    }
}
