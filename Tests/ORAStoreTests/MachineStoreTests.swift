import Crypto
import Foundation
import ORACore
import ORAStore
import ORATestSupport
import PostgresNIO
import Testing

@Suite("Enrolled machines and enrollment tokens in PostgreSQL")
struct MachineStoreTests {
    static let administrator = "uid=peter.admin,ou=People,dc=corp,dc=example"
    static let now = Date(timeIntervalSince1970: 1_795_340_000)

    let logger = TestDatabase.logger

    static func machine(_ name: String = "ws-0101", key: String? = nil) -> MachineStore.Machine {
        MachineStore.Machine(
            name: name, computerDN: "cn=\(name.uppercased()),ou=Workstations,ou=Computers,dc=corp,dc=example",
            publicKey: key ?? DevicePublicKey.text(P256.Signing.PrivateKey().publicKey),
            operatingSystem: "Debian GNU/Linux 12", agentVersion: "0.1.0", enrolledAt: now)
    }

    static let enrolled: @Sendable (String, MachineStore.EnrollmentOutcome) -> AuditEvent = { creator, outcome in
        var details: [String: AuditValue] = ["token_created_by": .string(creator)]
        if case .rekeyed(let previous, _) = outcome { details["previous_key"] = .string(previous) }
        return AuditEvent(
            .agentEnrolled, time: AuditTimestamp(Date()), actor: .system("test"), machine: "ws-0101", outcome: .success,
            details: details)
    }

    static let workstations = try! DistinguishedName("ou=Workstations,ou=Computers,dc=corp,dc=example")

    static func createToken(
        _ store: MachineStore, uses: Int = 1, expiresAt: Date = MachineStoreTests.now + 3600,
        binding: EnrollmentBinding = .organizationalUnit(MachineStoreTests.workstations), rekey: Bool = false
    ) async throws -> EnrollmentToken {
        let token = EnrollmentToken.generate()
        try await store.createToken(
            token, binding: binding, rekey: rekey, createdBy: Self.administrator, expiresAt: expiresAt, uses: uses,
            comment: "new laptops",
            auditEvent: AuditEvent(
                .agentTokenCreated, time: AuditTimestamp(Date()), actor: .system("test"), outcome: .success))
        return token
    }

    @Test("a token enrolls as often as it may and no more; only its hash is stored; each step is audited")
    func tokenUses() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = MachineStore(client: client, logger: logger)
            let token = try await Self.createToken(store, uses: 2)
            #expect(token.isWellFormed)
            #expect(
                try await database.sql("SELECT encode(token_hash, 'hex'), uses_left FROM enrollment_tokens")
                    == Hex.encode(token.hash) + "|2")

            #expect(
                try await store.enroll(Self.machine("ws-0101"), with: token, at: Self.now, auditEvent: Self.enrolled)
                    == .enrolled)
            #expect(
                try await store.enroll(Self.machine("ws-0102"), with: token, at: Self.now, auditEvent: Self.enrolled)
                    == .enrolled)
            await #expect(throws: MachineStore.EnrollmentError.invalidToken) {
                try await store.enroll(Self.machine("ws-0103"), with: token, at: Self.now, auditEvent: Self.enrolled)
            }
            #expect(try await store.machines().map(\.name) == ["ws-0101", "ws-0102"])
            let first = try #require(try await store.machine(named: "ws-0101"))
            #expect(first.enrolledBy == Self.administrator)
            #expect(first.revokedAt == nil)
            let events = try await database.sql("SELECT string_agg(event, ',' ORDER BY sequence) FROM audit_events")
            #expect(events == "agent.token_created,agent.enrolled,agent.enrolled", "\(events)")
            #expect(try await AuditLog(client: client, logger: logger).verify().intact)
        }
    }

    @Test("an unknown, expired or foreign token enrolls nothing and records nothing")
    func invalidTokens() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = MachineStore(client: client, logger: logger)
            let expired = try await Self.createToken(store, expiresAt: Self.now - 1)
            let atExpiry = try await Self.createToken(store, expiresAt: Self.now)
            let operatorToken = OperatorToken.generate()
            for token in [
                expired, atExpiry, EnrollmentToken.generate(), EnrollmentToken(value: operatorToken.value),
                EnrollmentToken(value: "' OR 1=1 --"),
            ] {
                await #expect(throws: MachineStore.EnrollmentError.invalidToken) {
                    try await store.enroll(Self.machine(), with: token, at: Self.now, auditEvent: Self.enrolled)
                }
            }
            #expect(try await store.machines().isEmpty)
            #expect(try await database.sql("SELECT string_agg(uses_left::text, ',') FROM enrollment_tokens") == "1,1")
            #expect(try await database.sql("SELECT count(*) FROM audit_events WHERE event = 'agent.enrolled'") == "0")
        }
    }

    @Test(
        "a taken name keeps its key: only a re-key token for that name replaces it, lifts a revocation and says which key it replaced"
    )
    func rekey() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = MachineStore(client: client, logger: logger)
            let oldKey = DevicePublicKey.text(P256.Signing.PrivateKey().publicKey)
            let newKey = DevicePublicKey.text(P256.Signing.PrivateKey().publicKey)
            try await store.enroll(
                Self.machine(key: oldKey), with: try await Self.createToken(store), at: Self.now,
                auditEvent: Self.enrolled)
            let plain = try await Self.createToken(store, uses: 3)
            await #expect(throws: MachineStore.EnrollmentError.alreadyEnrolled(revoked: false)) {
                try await store.enroll(Self.machine(key: newKey), with: plain, at: Self.now, auditEvent: Self.enrolled)
            }
            let revokeEvent = AuditEvent(
                .agentRevoked, time: AuditTimestamp(Date()), actor: .system("test"), machine: "ws-0101",
                outcome: .success)
            #expect(try await store.revoke("ws-0101", by: Self.administrator, at: Self.now, auditEvent: revokeEvent))
            #expect(
                !(try await store.revoke("ws-0101", by: Self.administrator, at: Self.now, auditEvent: revokeEvent)),
                "revoking twice records nothing the second time")
            #expect(!(try await store.revoke("ws-9999", by: Self.administrator, at: Self.now, auditEvent: revokeEvent)))
            let revoked = try #require(try await store.machine(named: "ws-0101"))
            #expect(revoked.revokedAt == Self.now)
            #expect(revoked.revokedBy == Self.administrator)
            // An agent connected with the old key may no longer act for it; a name never enrolled is left out.
            let whileRevoked = try await store.enrollments(of: ["ws-0101", "ws-9999"])
            #expect(whileRevoked == ["ws-0101": MachineStore.Enrollment(publicKey: oldKey, revoked: true)])
            #expect(MachineStore.Enrollment.change(since: oldKey, to: whileRevoked["ws-0101"]) == .machineRevoked)
            #expect(MachineStore.Enrollment.change(since: oldKey, to: whileRevoked["ws-9999"]) == .machineRevoked)
            await #expect(throws: MachineStore.EnrollmentError.alreadyEnrolled(revoked: true)) {
                try await store.enroll(Self.machine(key: newKey), with: plain, at: Self.now, auditEvent: Self.enrolled)
            }
            #expect(
                try await database.sql(
                    "SELECT uses_left FROM enrollment_tokens WHERE NOT rekey ORDER BY created_at DESC LIMIT 1")
                    == "3", "refused attempts use nothing")

            // A re-key token for another name does nothing here.
            let other = try await Self.createToken(store, binding: .machine("ws-0102"), rekey: true)
            await #expect(throws: MachineStore.EnrollmentError.invalidToken) {
                try await store.enroll(Self.machine(key: newKey), with: other, at: Self.now, auditEvent: Self.enrolled)
            }
            let rekey = try await Self.createToken(store, binding: .machine("ws-0101"), rekey: true)
            let outcome = try await store.enroll(
                Self.machine(key: newKey), with: rekey, at: Self.now + 60, auditEvent: Self.enrolled)
            #expect(outcome == .rekeyed(previousKey: oldKey, wasRevoked: true))
            let machine = try #require(try await store.machine(named: "ws-0101"))
            #expect(machine.publicKey == newKey)
            #expect(machine.revokedAt == nil)
            #expect(machine.enrolledAt == Self.now)
            let rekeyed = try await store.enrollments(of: ["ws-0101"])["ws-0101"]
            #expect(rekeyed == MachineStore.Enrollment(publicKey: newKey, revoked: false))
            #expect(MachineStore.Enrollment.change(since: oldKey, to: rekeyed) == .keyReplaced)
            #expect(MachineStore.Enrollment.change(since: newKey, to: rekeyed) == nil)
            let previous = try await database.sql(
                "SELECT details->>'previous_key' FROM audit_events WHERE event = 'agent.enrolled' ORDER BY sequence DESC LIMIT 1"
            )
            #expect(previous == oldKey, "\(previous)")
            let revocations = try await database.sql("SELECT count(*) FROM audit_events WHERE event = 'agent.revoked'")
            #expect(revocations == "1", "\(revocations)")
            await #expect(throws: MachineStore.EnrollmentError.invalidToken, "a re-key is good once") {
                try await store.enroll(Self.machine(key: oldKey), with: rekey, at: Self.now, auditEvent: Self.enrolled)
            }
        }
    }

    @Test("a token's grant is read without using it; the database refuses a re-key token for many machines")
    func grants() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = MachineStore(client: client, logger: logger)
            let token = try await Self.createToken(store, uses: 2)
            let grant = try #require(try await store.grant(of: token, at: Self.now))
            #expect(grant.binding == .organizationalUnit(Self.workstations))
            #expect(!grant.rekey)
            #expect(grant.createdBy == Self.administrator)
            #expect(try await store.grant(of: token, at: Self.now + 3600) == nil, "expired")
            #expect(try await store.grant(of: EnrollmentToken.generate(), at: Self.now) == nil)
            #expect(try await database.sql("SELECT uses_left FROM enrollment_tokens") == "2")
            await #expect(throws: (any Error).self) {
                _ = try await Self.createToken(store, uses: 2, binding: .machine("ws-0101"), rekey: true)
            }
            await #expect(throws: (any Error).self) {
                _ = try await Self.createToken(store, binding: .organizationalUnit(Self.workstations), rekey: true)
            }
        }
    }

    @Test("the last time an agent was seen is kept; machine names are lower case")
    func lastSeen() async throws {
        try await TestDatabase.with { database, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = MachineStore(client: client, logger: logger)
            try await store.enroll(
                Self.machine(), with: try await Self.createToken(store), at: Self.now, auditEvent: Self.enrolled)
            try await ReplicaStore(client: client, logger: logger).recordConnection(
                of: "ws-0101", to: UUID(), at: Self.now + 5)
            #expect(try await store.machine(named: "ws-0101")?.lastSeenAt == Self.now + 5)
            #expect(try await store.machine(named: "WS-0101") == nil)
            await #expect(throws: (any Error).self) {
                try await store.enroll(
                    Self.machine("WS-0102"), with: try await Self.createToken(store), at: Self.now,
                    auditEvent: Self.enrolled)
            }
        }
    }

    @Test("directory facts are stored and searched; a due machine is taken by one caller until its claim lapses")
    func directoryFacts() async throws {
        try await TestDatabase.with { _, client in
            try await Migrator(client: client, logger: logger).migrate()
            let store = MachineStore(client: client, logger: logger)
            let token = try await Self.createToken(store, uses: 3)
            for name in ["ws-0101", "ws-0102", "ws-0103"] {
                try await store.enroll(Self.machine(name), with: token, at: Self.now, auditEvent: Self.enrolled)
            }
            _ = try await store.revoke("ws-0103", by: Self.administrator, at: Self.now, auditEvent: nil)

            // Never looked up: due, the revoked one excepted; taken once, then not again until the claim lapses.
            let due = try await store.claimDirectoryChecks(checkedBefore: Self.now, limit: 10, at: Self.now)
            #expect(due.sorted() == ["ws-0101", "ws-0102"])
            #expect(try await store.claimDirectoryChecks(checkedBefore: Self.now, limit: 10, at: Self.now).isEmpty)
            let later = Self.now + 301
            #expect(try await store.claimDirectoryChecks(checkedBefore: later, limit: 1, at: later).count == 1)

            let finance = try DistinguishedName(
                "cn=Finance Workstations,ou=Computer Groups,ou=Groups,dc=corp,dc=example")
            let computer = Computer(
                name: "ws-0101",
                dn: try DistinguishedName("cn=WS-0101,ou=Workstations,ou=Computers,dc=corp,dc=example"),
                groups: [finance])
            try await store.recordDirectoryFacts(of: "ws-0101", computer, at: later)
            try await store.recordDirectoryFacts(of: "ws-0102", nil, at: later)
            // Looked up at `later`: not due before it, due after it.
            #expect(try await store.claimDirectoryChecks(checkedBefore: later, limit: 10, at: later).isEmpty)
            let due2 = try await store.claimDirectoryChecks(checkedBefore: later + 1, limit: 10, at: later + 1)
            #expect(due2.sorted() == ["ws-0101", "ws-0102"])

            let listed = try await store.machines(matching: .init(), limit: 10)
            #expect(listed.map(\.name) == ["ws-0101", "ws-0102", "ws-0103"])
            #expect(listed[0].directory == MachineStore.DirectoryFacts(computer: computer, checkedAt: later))
            #expect(listed[1].directory == MachineStore.DirectoryFacts(computer: nil, checkedAt: later))
            #expect(listed[2].directory == nil)
            #expect(listed.allSatisfy { !$0.online })
            let inGroup = MachineStore.MachineSearch(
                group: try DistinguishedName("CN=finance workstations, OU=Computer Groups,OU=Groups,DC=corp,DC=example")
            )
            #expect(try await store.machines(matching: inGroup, limit: 10).map(\.name) == ["ws-0101"])
            let inOU = MachineStore.MachineSearch(container: try DistinguishedName("ou=Computers,dc=corp,dc=example"))
            #expect(try await store.countMachines(matching: inOU) == 1)
            // A domain component is no scope: every machine lies below it.
            let domain = MachineStore.MachineSearch(container: try DistinguishedName("dc=corp,dc=example"))
            #expect(try await store.countMachines(matching: domain) == 0)
            #expect(
                try await store.machines(matching: .init(nameContains: "WS-010"), after: "ws-0101", limit: 1)
                    .map(\.name) == ["ws-0102"])
            let scopes = try await store.scopes()
            #expect(
                scopes.containers.map(\.dn.original) == [
                    "ou=Computers,dc=corp,dc=example", "ou=Workstations,ou=Computers,dc=corp,dc=example",
                ])
            #expect(scopes.groups.map(\.machines) == [1])
        }
    }
}
