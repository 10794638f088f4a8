public import Foundation
import HTTPTypes
public import Logging
public import ORACore
public import ORADirectory
public import ORAStore

/// Enrollment and the register of enrolled machines: administrators create one-time tokens and revoke machines;
/// an agent enrolls with a token, and only a machine that is a computer object in the directory may.
public final class AgentService: Sendable {
    /// The longest an enrollment token may stay valid.
    public static let longestTokenLifetime = Duration.seconds(30 * 24 * 3600)
    /// The most enrollments one token may be good for.
    public static let mostTokenUses = 10_000

    private let store: MachineStore
    private let directory: DirectoryClient
    private let gateway: AgentGateway?
    private let logger: Logger

    /// Creates the service.
    /// - Parameter gateway: where revoked machines' agents are disconnected.
    public init(store: MachineStore, directory: DirectoryClient, gateway: AgentGateway?, logger: Logger) {
        self.store = store
        self.directory = directory
        self.gateway = gateway
        self.logger = logger
    }

    /// A token as created, shown once.
    public struct CreatedToken: Sendable, Encodable {
        /// The secret.
        public var token: String
        /// Until when it is valid.
        public var expiresAt: Date
        /// How many enrollments it is good for.
        public var uses: Int

        enum CodingKeys: String, CodingKey {
            case token
            case expiresAt = "expires_at"
            case uses
        }
    }

    /// Creates an enrollment token for `lifetime` and `uses` enrollments; the creation is audited first.
    /// - Throws: `APIError` 400 for a lifetime or number of uses out of range, 503 when it cannot be stored.
    public func createToken(
        by administrator: Operator,
        lifetime: Duration,
        uses: Int,
        comment: String?,
        source: String,
        now: Date = Date()
    ) async throws(APIError) -> CreatedToken {
        guard lifetime >= .seconds(60), lifetime <= Self.longestTokenLifetime else {
            throw APIError(
                .badRequest, code: "invalid_request",
                message: "a token must be valid for between 1 minute and 30 days")
        }
        guard (1...Self.mostTokenUses).contains(uses) else {
            throw APIError(
                .badRequest, code: "invalid_request",
                message: "a token must be good for between 1 and \(Self.mostTokenUses) enrollments")
        }
        let token = EnrollmentToken.generate()
        let expiresAt = now.addingTimeInterval(lifetime.timeInterval)
        let event = AuditEvent(
            .agentTokenCreated, actor: .operator(dn: administrator.dn, account: administrator.account),
            source: source, outcome: .success,
            details: [
                "token_hash_prefix": .string(String(Hex.encode(token.hash).prefix(12))),
                "expires_at": .string(AuditTimestamp(expiresAt).description), "uses": .integer(Int64(uses)),
                "comment": .text(comment),
            ])
        do {
            try await store.createToken(
                token, createdBy: administrator.dn, expiresAt: expiresAt, uses: uses, comment: comment,
                auditEvent: event)
        } catch {
            throw .databaseUnavailable(error, doing: "creating an enrollment token", logger: logger)
        }
        return CreatedToken(token: token.value, expiresAt: expiresAt, uses: uses)
    }

    /// What an agent sends to enroll.
    public struct EnrollmentRequest: Sendable, Decodable {
        /// The one-time token.
        public var token: String
        /// The machine's name, as the directory knows it.
        public var machine: String
        /// The device public key (`DevicePublicKey` text).
        public var publicKey: String
        /// The operating system, as reported.
        public var operatingSystem: String
        /// The agent's version.
        public var agentVersion: String

        enum CodingKeys: String, CodingKey {
            case token, machine
            case publicKey = "public_key"
            case operatingSystem = "os"
            case agentVersion = "agent_version"
        }
    }

    /// Enrolls a machine: the token must be valid, the key a P-256 public key, and the name a computer object in
    /// the directory. The enrollment and its `agent.enrolled` event are stored together.
    /// - Returns: the machine as enrolled.
    /// - Throws: `APIError` 400 for a malformed request, 401 for a bad token, 403 for a name that is not a domain
    ///   computer, 502/503 when the directory or the database cannot answer.
    public func enroll(
        _ request: EnrollmentRequest, source: String, now: Date = Date()
    ) async throws(APIError)
        -> MachineStore.Machine
    {
        let token = EnrollmentToken(value: request.token)
        guard token.isWellFormed else { throw Self.invalidEnrollmentToken }
        guard (try? DevicePublicKey.parse(request.publicKey)) != nil else {
            throw APIError(
                .badRequest, code: "invalid_request", message: DevicePublicKeyError().description)
        }
        for (name, text) in [
            ("machine", request.machine), ("os", request.operatingSystem), ("agent_version", request.agentVersion),
        ] where !AgentProtocol.isReportable(text) {
            throw APIError(
                .badRequest, code: "invalid_request",
                message: "'\(name)' must be 1 to 200 characters without control characters")
        }
        let computer = try await directory.computer(
            named: request.machine,
            otherwise: APIError(
                .forbidden, code: "not_a_domain_machine",
                message:
                    "the directory has no computer object named \(request.machine); only domain machines may enroll"))
        let machine = MachineStore.Machine(
            name: computer.name.lowercased(), computerDN: computer.dn.original, publicKey: request.publicKey,
            operatingSystem: request.operatingSystem, agentVersion: request.agentVersion, enrolledAt: now)
        let eventID = UUID()
        do {
            try await store.enroll(machine, with: token, at: now) { creator, outcome in
                var details: [String: AuditValue] = [
                    "computer_dn": .string(machine.computerDN), "public_key": .string(machine.publicKey),
                    "os": .string(machine.operatingSystem), "agent_version": .string(machine.agentVersion),
                    "token_created_by": .string(creator),
                    "token_hash_prefix": .string(String(Hex.encode(token.hash).prefix(12))),
                ]
                if case .reenrolled(let previous) = outcome {
                    details["replaced_key"] = .string(previous)
                }
                return AuditEvent(
                    .agentEnrolled, id: eventID, actor: .machine(machine.name), machine: machine.name, source: source,
                    outcome: .success, details: details)
            }
        } catch is MachineStore.EnrollmentError {
            throw Self.invalidEnrollmentToken
        } catch {
            throw .databaseUnavailable(error, doing: "enrolling a machine", logger: logger)
        }
        logger.notice("machine enrolled", metadata: ["machine": "\(machine.name)"])
        return machine
    }

    /// Every enrolled machine.
    public func machines() async throws(APIError) -> [MachineStore.Machine] {
        do {
            return try await store.machines()
        } catch {
            throw .databaseUnavailable(error, doing: "listing machines", logger: logger)
        }
    }

    /// The enrolled machine called `name`.
    /// - Throws: `APIError` 404 when none is.
    public func machine(named name: String) async throws(APIError) -> MachineStore.Machine {
        let found: MachineStore.Machine?
        do {
            found = try await store.machine(named: name.lowercased())
        } catch {
            throw .databaseUnavailable(error, doing: "looking up a machine", logger: logger)
        }
        guard let found else { throw Self.unknownMachine(name) }
        return found
    }

    /// Revokes the machine called `name`; the revocation and its `agent.revoked` event are stored together.
    /// - Throws: `APIError` 404 when no such machine is enrolled, 409 when it is already revoked.
    public func revoke(
        _ name: String, by administrator: Operator, source: String, now: Date = Date()
    )
        async throws(APIError)
    {
        let machine = try await self.machine(named: name)
        let event = AuditEvent(
            .agentRevoked, actor: .operator(dn: administrator.dn, account: administrator.account),
            machine: machine.name, source: source, outcome: .success,
            details: ["computer_dn": .string(machine.computerDN), "public_key": .string(machine.publicKey)])
        let revoked: Bool
        do {
            revoked = try await store.revoke(machine.name, by: administrator.dn, at: now, auditEvent: event)
        } catch {
            throw .databaseUnavailable(error, doing: "revoking a machine", logger: logger)
        }
        guard revoked else {
            throw APIError(.conflict, code: "already_revoked", message: "\(machine.name) is already revoked")
        }
        logger.notice("machine revoked", metadata: ["machine": "\(machine.name)"])
        await gateway?.disconnect(machine.name)
    }

    static let invalidEnrollmentToken = APIError(
        .unauthorized, code: "invalid_enrollment_token",
        message: "the enrollment token is not valid: unknown, used up or expired; ask an administrator for a new one")

    static func unknownMachine(_ name: String) -> APIError {
        APIError(.notFound, code: "unknown_machine", message: "no machine named \(name) is enrolled")
    }

}
