import Foundation
import Hummingbird
import ORACore
import ORAStore

/// The JSON body of `POST /api/v1/agents/tokens`.
struct EnrollmentTokenRequest: Decodable {
    var expiresInSeconds: Int64?
    var uses: Int?
    var comment: String?
    var machine: String?
    var ou: String?
    var group: String?

    enum CodingKeys: String, CodingKey {
        case expiresInSeconds = "expires_in_seconds"
        case uses, comment, machine, ou, group
    }

    /// What the token may enroll: exactly one of `machine`, `ou` and `group`.
    func binding() throws(APIError) -> EnrollmentBinding {
        let given = [("machine", machine), ("ou", ou), ("group", group)].compactMap { kind, value in
            value.map { (kind, $0) }
        }
        guard given.count == 1, let (kind, value) = given.first else {
            throw APIError(
                .badRequest, code: "invalid_request",
                message:
                    "a token must be bound to exactly one of 'machine' (a name), 'ou' (a DN) or 'group' (a computer group's DN)"
            )
        }
        do {
            return try EnrollmentBinding(kind: kind, value: value)
        } catch {
            throw APIError(.badRequest, code: "invalid_request", message: error.description)
        }
    }
}

/// The JSON body of `POST /api/v1/agents/{name}/rekey`.
struct RekeyRequest: Decodable {
    var expiresInSeconds: Int64?
    var comment: String?

    enum CodingKeys: String, CodingKey {
        case expiresInSeconds = "expires_in_seconds"
        case comment
    }
}

/// An enrolled machine as the API shows it.
struct MachineDocument: Encodable {
    var name: String
    var computerDN: String
    var operatingSystem: String
    var agentVersion: String
    var publicKey: String
    var enrolledAt: Date
    var enrolledBy: String
    var revokedAt: Date?
    var revokedBy: String?
    var lastSeenAt: Date?
    var doctor: DoctorDocument?

    /// The last report of `ora-agent doctor` on the machine.
    struct DoctorDocument: Encodable {
        var checkedAt: Date
        var ok: Bool
        var checks: [DoctorReport.Check]

        enum CodingKeys: String, CodingKey {
            case checkedAt = "checked_at"
            case ok, checks
        }
    }

    init(_ machine: MachineStore.Machine) {
        name = machine.name
        computerDN = machine.computerDN
        operatingSystem = machine.operatingSystem
        agentVersion = machine.agentVersion
        publicKey = machine.publicKey
        enrolledAt = machine.enrolledAt
        enrolledBy = machine.enrolledBy
        revokedAt = machine.revokedAt
        revokedBy = machine.revokedBy
        lastSeenAt = machine.lastSeenAt
        if let text = machine.doctorReport, let checkedAt = machine.doctorReportedAt,
            let report = try? JSONDecoder().decode(DoctorReport.self, from: Data(text.utf8))
        {
            doctor = DoctorDocument(checkedAt: checkedAt, ok: report.ok, checks: report.checks)
        }
    }

    enum CodingKeys: String, CodingKey {
        case name
        case computerDN = "computer_dn"
        case operatingSystem = "os"
        case agentVersion = "agent_version"
        case publicKey = "public_key"
        case enrolledAt = "enrolled_at"
        case enrolledBy = "enrolled_by"
        case revokedAt = "revoked_at"
        case revokedBy = "revoked_by"
        case lastSeenAt = "last_seen_at"
        case doctor
    }
}

extension Router where Context == ORARequestContext {
    /// Adds enrollment (`POST /agent/v1/enroll`, authenticated by the one-time token) and the administrators' API
    /// for tokens and enrolled machines.
    func addAgentRoutes(agents: AgentService, operators: OperatorService) {
        post("agent/v1/enroll") { request, context -> Response in
            let body = try await request.decodeJSON(
                AgentService.EnrollmentRequest.self, context: context,
                expected: #"{"token", "machine", "public_key", "os", "agent_version"}"#)
            let machine = try await agents.enroll(body, source: context.sourceAddress)
            return try Response.encodedJSON(MachineDocument(machine), status: .created)
        }

        // What `ora-agent doctor` found on a machine, signed with its device key; the latest is kept.
        post("agent/v1/doctor") { request, context -> Response in
            let report = try await request.decodeJSON(
                DoctorReport.self, context: context, expected: #"{"machine", "time", "checks", "signature"}"#)
            try await agents.recordDoctorReport(report)
            return Response(status: .noContent)
        }

        let api = group("api/v1/agents").add(middleware: OperatorAuthenticationMiddleware(service: operators))
        let readers: Set<OperatorRole> = [.administrator, .auditor]

        api.post("tokens") { request, context -> Response in
            let identity = try await operators.require(
                [.administrator], of: context.session, toDo: "create enrollment tokens")
            let body = try await request.decodeJSON(
                EnrollmentTokenRequest.self, context: context,
                expected: #"{"machine" or "ou" or "group", "expires_in_seconds", "uses", "comment"}"#)
            let created = try await agents.createToken(
                by: identity.person, binding: try body.binding(), lifetime: .seconds(body.expiresInSeconds ?? 3600),
                uses: body.uses ?? 1, comment: body.comment, source: context.sourceAddress)
            return try Response.encodedJSON(created, status: .created)
        }

        api.get("tokens") { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "list enrollment tokens")
            return try Response.encodedJSON(try await agents.tokens().map(EnrollmentTokenDocument.init))
        }

        api.post("tokens/:id/revoke") { _, context -> Response in
            let identity = try await operators.require(
                [.administrator], of: context.session, toDo: "revoke enrollment tokens")
            let id = try context.id(of: "token")
            let revoked = try await agents.revokeToken(id, by: identity.person, source: context.sourceAddress)
            return try Response.encodedJSON(EnrollmentTokenDocument(revoked))
        }

        api.post(":name/rekey") { request, context -> Response in
            let identity = try await operators.require(
                [.administrator], of: context.session, toDo: "re-key machines")
            let name = try context.parameters.require("name")
            let body = try await request.decodeJSON(
                RekeyRequest.self, context: context, expected: #"{"expires_in_seconds", "comment"} (both optional: {})"#
            )
            let created = try await agents.authorizeRekey(
                of: name, by: identity.person, lifetime: .seconds(body.expiresInSeconds ?? 3600),
                comment: body.comment, source: context.sourceAddress)
            return try Response.encodedJSON(created, status: .created)
        }

        // A page of the enrolled machines, by name: `limit` of them (1,000 unless given), after `after`.
        api.get { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "list enrolled machines")
            var query = try QueryParameters(request)
            let limit = try query.integer("limit", in: 1...10_000) ?? 1000
            let after = try query.text("after", atMost: 255)
            try query.rejectUnknown()
            return try Response.encodedJSON(
                try await agents.machines(after: after?.lowercased(), limit: Int(limit)).map(MachineDocument.init))
        }

        api.get(":name") { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "look at enrolled machines")
            let name = try context.parameters.require("name")
            return try Response.encodedJSON(MachineDocument(try await agents.machine(named: name)))
        }

        api.post(":name/revoke") { _, context -> Response in
            let identity = try await operators.require([.administrator], of: context.session, toDo: "revoke machines")
            let name = try context.parameters.require("name")
            try await agents.revoke(name, by: identity.person, source: context.sourceAddress)
            return try Response.encodedJSON(["outcome": "revoked", "machine": name.lowercased()])
        }
    }
}

/// An enrollment token as `GET /api/v1/agents/tokens` lists it: what it is for and what is left of it, never the
/// token itself.
struct EnrollmentTokenDocument: Encodable {
    var id: String
    var boundKind: String
    var boundTo: String
    var purpose: String
    var createdBy: String
    var createdAt: Date
    var expiresAt: Date
    var usesLeft: Int
    var comment: String?
    var revokedAt: Date?
    var revokedBy: String?

    init(_ token: MachineStore.TokenRecord) {
        id = token.id.uuidString.lowercased()
        boundKind = token.binding.kind
        boundTo = token.binding.value
        purpose = token.rekey ? "rekey" : "enroll"
        createdBy = token.createdBy
        createdAt = token.createdAt
        expiresAt = token.expiresAt
        usesLeft = token.usesLeft
        comment = token.comment
        revokedAt = token.revokedAt
        revokedBy = token.revokedBy
    }

    enum CodingKeys: String, CodingKey {
        case id, purpose, comment
        case boundKind = "bound_kind"
        case boundTo = "bound_to"
        case createdBy = "created_by"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case usesLeft = "uses_left"
        case revokedAt = "revoked_at"
        case revokedBy = "revoked_by"
    }
}
