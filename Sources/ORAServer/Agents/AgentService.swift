import Crypto
public import Foundation
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
    private let gateway: AgentGateway
    private let replicas: ReplicaStore
    private let bus: ReplicaBus
    private let journal: AuditJournal
    private let logger: Logger
    private let clock: ServerClock

    /// Creates the service.
    /// - Parameters:
    ///   - gateway: where revoked machines' agents are disconnected when they are connected here; `replicas` says
    ///     which replica holds them otherwise, and `bus` asks it to.
    ///   - journal: where revocations are recorded (they never wait for the audit log).
    init(
        store: MachineStore, directory: DirectoryClient, gateway: AgentGateway, replicas: ReplicaStore,
        bus: ReplicaBus, journal: AuditJournal, clock: ServerClock, logger: Logger
    ) {
        self.clock = clock
        self.store = store
        self.directory = directory
        self.gateway = gateway
        self.replicas = replicas
        self.bus = bus
        self.journal = journal
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
        /// What it may enroll.
        public var binding: EnrollmentBinding
        /// Whether it re-keys an enrolled or revoked machine.
        public var rekey: Bool

        enum CodingKeys: String, CodingKey {
            case token
            case expiresAt = "expires_at"
            case uses, machine, ou, group, purpose
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(token, forKey: .token)
            try container.encode(expiresAt, forKey: .expiresAt)
            try container.encode(uses, forKey: .uses)
            switch binding {
            case .machine(let name): try container.encode(name, forKey: .machine)
            case .organizationalUnit(let dn): try container.encode(dn.original, forKey: .ou)
            case .computerGroup(let dn): try container.encode(dn.original, forKey: .group)
            }
            try container.encode(rekey ? "rekey" : "enroll", forKey: .purpose)
        }
    }

    /// Creates an enrollment token for `lifetime` and `uses` enrollments of what `binding` allows; the creation
    /// is audited first.
    /// - Throws: `AgentError.invalidRequest` for a lifetime or number of uses out of range, `.databaseUnavailable`.
    public func createToken(
        by administrator: Operator,
        binding: EnrollmentBinding,
        lifetime: Duration,
        uses: Int,
        comment: String?,
        source: String
    ) async throws(AgentError) -> CreatedToken {
        let now = clock.now()
        guard lifetime >= .seconds(60), lifetime <= Self.longestTokenLifetime else {
            throw .invalidRequest("a token must be valid for between 1 minute and 30 days")
        }
        guard (1...Self.mostTokenUses).contains(uses) else {
            throw .invalidRequest("a token must be good for between 1 and \(Self.mostTokenUses) enrollments")
        }
        if case .machine = binding, uses != 1 {
            throw .invalidRequest("a token bound to one machine is good for one enrollment")
        }
        return try await storeToken(
            binding: binding, rekey: false, by: administrator, lifetime: lifetime, uses: uses, comment: comment,
            source: source, now: now)
    }

    /// The enrollment tokens still good and those made or ended in the last 30 days, newest first; never a token.
    public func tokens() async throws(AgentError) -> [MachineStore.TokenRecord] {
        do {
            return try await store.tokens(at: clock.now())
        } catch {
            throw databaseFailed(error, doing: "listing enrollment tokens")
        }
    }

    /// Revokes the enrollment token `id` at once: it enrolls nothing from now on. Recorded as `agent.token_revoked`
    /// in the same transaction.
    /// - Throws: `AgentError.unknownToken` when there is no such token or it was revoked already.
    public func revokeToken(
        _ id: UUID, by administrator: Operator, source: String
    ) async throws(AgentError) -> MachineStore.TokenRecord {
        let time = clock.timestamp
        let revoked: MachineStore.TokenRecord?
        do {
            revoked = try await store.revokeToken(id: id, by: administrator.dn) { token in
                var machine: String?
                if case .machine(let name) = token.binding { machine = name }
                return AuditEvent(
                    .agentTokenRevoked, time: time,
                    actor: .operator(dn: administrator.dn, account: administrator.account), machine: machine,
                    source: source, outcome: .success,
                    details: [
                        "token": .string(id.uuidString.lowercased()), "bound_kind": .string(token.binding.kind),
                        "bound_to": .string(token.binding.value),
                        "purpose": .string(token.rekey ? "rekey" : "enroll"),
                    ])
            }
        } catch {
            throw databaseFailed(error, doing: "revoking an enrollment token")
        }
        guard let revoked else { throw .unknownToken(id) }
        return revoked
    }

    /// Authorises a new key for the enrolled or revoked machine `name`: a single-use token, bound to that name,
    /// with which its agent enrolls again; the old key stops working then, and a revocation is lifted.
    /// - Throws: `AgentError.unknownMachine` when no such machine was ever enrolled, `.databaseUnavailable`.
    public func authorizeRekey(
        of name: String, by administrator: Operator, lifetime: Duration, comment: String?, source: String
    ) async throws(AgentError) -> CreatedToken {
        let now = clock.now()
        let machine = try await self.machine(named: name)
        guard lifetime >= .seconds(60), lifetime <= .seconds(7 * 24 * 3600) else {
            throw .invalidRequest("a re-key token must be valid for between 1 minute and 7 days")
        }
        return try await storeToken(
            binding: .machine(machine.name), rekey: true, by: administrator, lifetime: lifetime, uses: 1,
            comment: comment, source: source, now: now,
            extra: [
                "public_key_fingerprint": .text(DevicePublicKey.fingerprint(machine.publicKey)),
                "revoked": .bool(machine.revokedAt != nil),
            ])
    }

    private func storeToken(
        binding: EnrollmentBinding, rekey: Bool, by administrator: Operator, lifetime: Duration, uses: Int,
        comment: String?, source: String, now: Date, extra: [String: AuditValue] = [:]
    ) async throws(AgentError) -> CreatedToken {
        if let comment, !AuditText.isBounded(comment, to: 500) {
            throw .invalidRequest("'comment' must be at most 500 characters")
        }
        let token = EnrollmentToken.generate()
        let expiresAt = now.addingTimeInterval(lifetime.timeInterval)
        var details: [String: AuditValue] = [
            "token_hash_prefix": .string(String(Hex.encode(token.hash).prefix(12))),
            "expires_at": .string(AuditTimestamp(expiresAt).description), "uses": .integer(Int64(uses)),
            "comment": .text(comment), "bound_kind": .string(binding.kind), "bound_to": .string(binding.value),
            "purpose": .string(rekey ? "rekey" : "enroll"),
        ]
        details.merge(extra) { _, new in new }
        var machine: String?
        if case .machine(let name) = binding { machine = name }
        let event = AuditEvent(
            .agentTokenCreated, time: clock.timestamp,
            actor: .operator(dn: administrator.dn, account: administrator.account),
            machine: machine, source: source, outcome: .success, details: details)
        do {
            try await store.createToken(
                token, binding: binding, rekey: rekey, createdBy: administrator.dn, expiresAt: expiresAt, uses: uses,
                comment: comment, auditEvent: event)
        } catch {
            throw databaseFailed(error, doing: "creating an enrollment token")
        }
        return CreatedToken(token: token.value, expiresAt: expiresAt, uses: uses, binding: binding, rekey: rekey)
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

    /// Enrolls a machine. The token is checked first, before anything is asked of the directory, so a stranger
    /// learns nothing about which computers exist; then the key, the name's computer object and the token's
    /// binding. A name that is enrolled or revoked already takes a new key only with an administrator's re-key
    /// token. The enrollment and its event (`agent.enrolled`, or `agent.rekeyed` with both key fingerprints) are
    /// stored together; the agent of a replaced key is disconnected.
    /// - Returns: the machine as enrolled.
    /// - Throws: `AgentError`: `.invalidRequest` for a malformed request, `.invalidEnrollmentToken`,
    ///   `.notADomainMachine` or `.tokenNotFor` for a name the token may not enroll, `.alreadyEnrolled`, and
    ///   `.directory` or `.databaseUnavailable` when they cannot answer.
    public func enroll(
        _ request: EnrollmentRequest, source: String
    ) async throws(AgentError)
        -> MachineStore.Machine
    {
        let now = clock.now()
        let token = EnrollmentToken(value: request.token)
        guard token.isWellFormed else { throw .invalidEnrollmentToken }
        let grant: MachineStore.TokenGrant?
        do {
            grant = try await store.grant(of: token, at: now)
        } catch {
            throw databaseFailed(error, doing: "checking an enrollment token")
        }
        guard let grant else { throw .invalidEnrollmentToken }
        guard (try? DevicePublicKey.parse(request.publicKey)) != nil else {
            throw .invalidRequest(DevicePublicKeyError().description)
        }
        for (name, text) in [
            ("machine", request.machine), ("os", request.operatingSystem), ("agent_version", request.agentVersion),
        ] where !AgentProtocol.isReportable(text) {
            throw .invalidRequest("'\(name)' must be 1 to 200 characters without control characters")
        }
        guard grant.binding.mayName(request.machine) else {
            throw .tokenNotFor(machine: request.machine, binding: grant.binding)
        }
        let found: Computer?
        do {
            found = try await directory.computer(named: request.machine)
        } catch {
            throw .directory(error)
        }
        guard let computer = found else { throw .notADomainMachine(request.machine) }
        guard grant.binding.admits(computer) else {
            throw .tokenNotFor(machine: request.machine, binding: grant.binding)
        }
        let machine = MachineStore.Machine(
            name: computer.name.lowercased(), computerDN: computer.dn.original, publicKey: request.publicKey,
            operatingSystem: request.operatingSystem, agentVersion: request.agentVersion, enrolledAt: now,
            // The store records the token's creator; the answer says the same.
            enrolledBy: grant.createdBy)
        let eventID = UUID()
        let outcome: MachineStore.EnrollmentOutcome
        do {
            outcome = try await store.enroll(machine, with: token, at: now) { creator, outcome in
                var details: [String: AuditValue] = [
                    "computer_dn": .string(machine.computerDN), "public_key": .string(machine.publicKey),
                    "public_key_fingerprint": .text(DevicePublicKey.fingerprint(machine.publicKey)),
                    "os": .string(machine.operatingSystem), "agent_version": .string(machine.agentVersion),
                    "token_created_by": .string(creator),
                    "token_hash_prefix": .string(String(Hex.encode(token.hash).prefix(12))),
                ]
                var type = AuditEventType.agentEnrolled
                if case .rekeyed(let previous, let wasRevoked) = outcome {
                    type = .agentRekeyed
                    details["previous_key"] = .string(previous)
                    details["previous_key_fingerprint"] = .text(DevicePublicKey.fingerprint(previous))
                    details["revocation_lifted"] = .bool(wasRevoked)
                }
                return AuditEvent(
                    type, id: eventID, time: clock.timestamp, actor: .machine(machine.name), machine: machine.name,
                    source: source,
                    outcome: .success, details: details)
            }
        } catch MachineStore.EnrollmentError.alreadyEnrolled(let revoked) {
            throw .alreadyEnrolled(machine.name, revoked: revoked)
        } catch is MachineStore.EnrollmentError {
            throw .invalidEnrollmentToken
        } catch {
            throw databaseFailed(error, doing: "enrolling a machine")
        }
        do {
            // What the machine list searches by; failing, the next round of look-ups stores it.
            try await store.recordDirectoryFacts(of: machine.name, computer, at: now)
        } catch {
            logDatabaseFailure(error, doing: "storing a machine's directory facts", logger: logger)
        }
        if case .rekeyed = outcome {
            logger.notice("machine re-keyed", metadata: ["machine": "\(machine.name)"])
            // The agent holding the old key, if it is still connected, has no business staying.
            await disconnect(machine.name)
        } else {
            logger.notice("machine enrolled", metadata: ["machine": "\(machine.name)"])
        }
        return machine
    }

    /// The enrolled machines by name: at most `limit`, after `after` when it is given.
    public func machines(after: String?, limit: Int) async throws(AgentError) -> [MachineStore.Machine] {
        do {
            return try await store.machines(after: after, limit: limit)
        } catch {
            throw databaseFailed(error, doing: "listing machines")
        }
    }

    /// Keeps `report`, which `ora-agent doctor` on the machine signed, as the machine's latest (`ora agents show`).
    /// - Throws: `AgentError.unknownMachine` (or revoked), `.doctorReportRefused` when the machine's key did not
    ///   sign it or it is stale or malformed, `.doctorReportNotNewer` when it was taken already or a later one was,
    ///   `.databaseUnavailable`.
    public func recordDoctorReport(_ report: DoctorReport) async throws(AgentError) {
        let machine = try await machine(named: report.machine)
        guard machine.revokedAt == nil else { throw .unknownMachine(report.machine) }
        let key: P256.Signing.PublicKey
        do {
            key = try DevicePublicKey.parse(machine.publicKey)
        } catch {
            throw .doctorReportRefused(.badSignature)
        }
        let madeAt: Date
        do throws(DoctorReportError) {
            madeAt = try report.verify(with: key, now: clock.now())
        } catch {
            throw .doctorReportRefused(error)
        }
        let recorded: Bool
        do {
            let text = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
            recorded = try await store.recordDoctorReport(text, madeAt: madeAt, of: machine.name)
        } catch {
            throw databaseFailed(error, doing: "keeping a doctor's report")
        }
        guard recorded else { throw .doctorReportNotNewer }
        logger.info(
            "a doctor's report was kept",
            metadata: ["machine": "\(machine.name)", "doctor.ok": "\(report.ok)"])
    }

    /// The enrolled machine called `name`.
    /// - Throws: `AgentError.unknownMachine` when none is.
    public func machine(named name: String) async throws(AgentError) -> MachineStore.Machine {
        try await Self.machine(named: name, in: store, logger: logger)
    }

    /// The enrolled machine called `name` (in any case) in `store`, revoked or not.
    /// - Throws: `AgentError.unknownMachine`, `.databaseUnavailable`.
    static func machine(
        named name: String, in store: MachineStore, logger: Logger
    ) async throws(AgentError) -> MachineStore.Machine {
        let found: MachineStore.Machine?
        do {
            found = try await store.machine(named: name.lowercased())
        } catch {
            logDatabaseFailure(error, doing: "looking up a machine", logger: logger)
            throw .databaseUnavailable
        }
        guard let found else { throw .unknownMachine(name) }
        return found
    }

    /// Closes the connection of `machine`'s agent, here or on the replica it is connected to.
    private func disconnect(_ machine: String) async {
        await gateway.disconnectHere(machine)
        guard let owner = try? await replicas.connectedInstance(of: machine), owner != bus.instance else { return }
        _ = try? await bus.call(.disconnect(machine: machine), on: owner)
    }

    /// Revokes the machine called `name`: the revocation is stored and its agent disconnected at once; the
    /// `agent.revoked` event goes through the journal, and the answer waits for it at most
    /// `SessionBroker.endRecordWait`.
    /// - Throws: `AgentError.unknownMachine`, `.alreadyRevoked`.
    public func revoke(
        _ name: String, by administrator: Operator, source: String
    )
        async throws(AgentError)
    {
        let now = clock.now()
        let machine = try await self.machine(named: name)
        let event = AuditEvent(
            .agentRevoked, time: clock.timestamp,
            actor: .operator(dn: administrator.dn, account: administrator.account),
            machine: machine.name, source: source, outcome: .success,
            details: ["computer_dn": .string(machine.computerDN), "public_key": .string(machine.publicKey)])
        let revoked: Bool
        do {
            // Revoking ends access: it is stored and takes effect without waiting for the audit log, which gets the
            // event through the journal.
            revoked = try await store.revoke(machine.name, by: administrator.dn, at: now, auditEvent: nil)
        } catch {
            throw databaseFailed(error, doing: "revoking a machine")
        }
        guard revoked else {
            throw .alreadyRevoked(machine.name)
        }
        await disconnect(machine.name)
        journal.record([event])
        logger.notice("machine revoked", metadata: ["machine": "\(machine.name)"])
        await journal.waitUntilStored(event.id, atMost: SessionBroker.endRecordWait)
    }

    /// `.databaseUnavailable`, with the failure logged for the server's operators (the client is not told why).
    private func databaseFailed(_ error: any Error, doing action: String) -> AgentError {
        logDatabaseFailure(error, doing: action, logger: logger)
        return .databaseUnavailable
    }
}
