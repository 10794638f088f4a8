import Foundation
import Hummingbird
import ORACore
import ORAStore

/// The JSON body of `PUT /api/v1/policy`.
struct PolicyApplyRequest: Decodable {
    var files: [PolicySet.File]
    var comment: String?
    /// The active version the change was reviewed against; omitted, the change applies over whatever is active.
    var basedOn: Int64?
    /// The change was reviewed when no version was active.
    var basedOnNothing: Bool?
    /// Apply even if the directory lacks entries the files name (created later).
    var allowUnknown: Bool?

    enum CodingKeys: String, CodingKey {
        case files, comment
        case basedOn = "based_on"
        case basedOnNothing = "based_on_nothing"
        case allowUnknown = "allow_unknown"
    }

    var base: PolicyStore.Base {
        if basedOnNothing == true { return .nothing }
        return basedOn.map(PolicyStore.Base.version) ?? .anything
    }
}

/// The JSON body of `POST /api/v1/policy/check`.
struct PolicyCheckRequest: Decodable {
    var files: [PolicySet.File]
}

/// What `POST /api/v1/policy/check` answers: the set is valid; the entries it names that the directory lacks.
struct PolicyCheckDocument: Encodable {
    struct Unknown: Encodable {
        var location: String?
        var key: String
        var dn: String
        var kind: String
        var suggestions: [String]
        var message: String
    }

    struct Impact: Encodable {
        struct Change: Encodable {
            var from: String
            var to: String
            var machines: Int
        }

        /// The group's DN; absent for policies about every helper.
        var group: String?
        var changes: [Change]
        var summary: String
    }

    var policies: Int
    var references: Int
    var unknown: [Unknown]
    /// How many enrolled machines the impact was worked out on.
    var machines: Int
    var impact: [Impact]

    init(_ set: PolicySet, unknown: [PolicyService.UnknownEntry], impact: PolicyImpact) {
        policies = set.policies.count
        references = set.references.count
        machines = impact.machines
        self.impact = impact.groups.map { group in
            Impact(
                group: group.group?.description,
                changes: group.changes.map { .init(from: $0.from.rawValue, to: $0.to.rawValue, machines: $0.machines) },
                summary: group.summary)
        }
        self.unknown = unknown.map {
            Unknown(
                location: $0.reference.location?.description, key: $0.reference.keyPath,
                dn: $0.reference.dn.description, kind: $0.reference.kind.rawValue, suggestions: $0.suggestions,
                message: $0.description)
        }
    }
}

struct PolicyRollbackRequest: Decodable {
    var version: Int64
    var comment: String?
}

struct PolicyExplainRequest: Decodable {
    /// The invitation whose answering is explained.
    struct Invitation: Decodable {
        var lifetimeSeconds: Int64
        var password: Bool

        enum CodingKeys: String, CodingKey {
            case lifetimeSeconds = "lifetime_seconds"
            case password
        }
    }

    var person: String
    var machine: String
    var mode: AccessMode?
    var ticket: String?
    var at: Date?
    var invitation: Invitation?

    enum CodingKeys: String, CodingKey {
        case person = "operator"
        case machine, mode, ticket, at, invitation
    }
}

/// What `GET /api/v1/policy` answers.
struct PolicyDocument: Encodable {
    struct Summary: Encodable {
        var name: String
        var description: String?
        var effect: String
        var access: String?
        var location: String

        init(_ policy: Policy) {
            name = policy.name
            description = policy.description
            location = policy.location.description
            switch policy.effect {
            case .allow(let mode):
                effect = "allow"
                access = mode.rawValue
            case .deny:
                effect = "deny"
                access = nil
            }
        }
    }
    var activation: PolicyStore.Activation?
    var policies: [Summary]
    var files: [PolicySet.File]

    init(_ active: PolicyService.Active) {
        activation = active.activation
        policies = active.set.policies.map(Summary.init)
        files = active.set.files
    }
}

extension Router where Context == ORARequestContext {
    /// Adds the policy API: read and explain (administrators and auditors), apply and roll back (administrators).
    func addPolicyRoutes(policies: PolicyService, operators: OperatorService) {
        let api = group("api/v1/policy").add(middleware: OperatorAuthenticationMiddleware(service: operators))
        let readers: Set<OperatorRole> = [.administrator, .auditor]

        api.get { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "read the policy")
            return try Response.encodedJSON(PolicyDocument(policies.active))
        }

        api.get("versions") { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "read the policy history")
            return try Response.encodedJSON(try await policies.history())
        }

        api.get("diff") { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "compare policy versions")
            let parameters = request.uri.queryParameters
            guard let from = parameters.get("from").flatMap(Int64.init), from > 0,
                let to = parameters.get("to").flatMap(Int64.init), to > 0
            else {
                throw APIError.invalidRequest("'from' and 'to' must each be a policy version number")
            }
            let (diff, fields) = try await policies.difference(from: from, to: to)
            return try Response.encodedJSON(PolicyDiffDocument(from: from, to: to, diff: diff, fields: fields))
        }

        api.put { request, context -> Response in
            let identity = try await operators.require([.administrator], of: context.session, toDo: "apply policy")
            let body = try await request.decodeJSON(
                PolicyApplyRequest.self, context: context,
                expected: #"{"files": [{"name", "content"}], "comment", "based_on", "allow_unknown"}"#)
            switch try await policies.apply(
                files: body.files, author: identity.person, source: context.sourceAddress, comment: body.comment,
                base: body.base, allowUnknown: body.allowUnknown ?? false)
            {
            case .applied(let version):
                return try Response.encodedJSON(["outcome": "applied", "version": "\(version)"])
            case .unchanged(let version):
                return try Response.encodedJSON(["outcome": "unchanged", "version": "\(version)"])
            }
        }

        // The files checked as apply checks them, without applying: every mistake, and each entry the directory
        // lacks with the names probably meant.
        api.post("check") { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "check policy files")
            let body = try await request.decodeJSON(
                PolicyCheckRequest.self, context: context, expected: #"{"files": [{"name", "content"}]}"#)
            let (set, unknown) = try await policies.check(files: body.files)
            return try Response.encodedJSON(
                PolicyCheckDocument(set, unknown: unknown, impact: try await policies.impact(of: set)))
        }

        api.post("rollback") { request, context -> Response in
            let identity = try await operators.require([.administrator], of: context.session, toDo: "roll policy back")
            let body = try await request.decodeJSON(
                PolicyRollbackRequest.self, context: context, expected: #"{"version": N, "comment"}"#)
            let outcome = try await policies.rollback(
                to: body.version, actor: identity.person, source: context.sourceAddress, comment: body.comment)
            return try Response.encodedJSON([
                "outcome": outcome == .alreadyActive ? "already_active" : "rolled_back", "version": "\(body.version)",
            ])
        }

        api.post("explain") { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "explain policy decisions")
            let body = try await request.decodeJSON(
                PolicyExplainRequest.self, context: context,
                expected:
                    #"{"operator", "machine", "mode", "ticket", "at", "invitation": {"lifetime_seconds", "password"}}"#)
            if let lifetime = body.invitation?.lifetimeSeconds, !(60...604_800).contains(lifetime) {
                throw APIError(
                    .badRequest, code: "invalid_request",
                    message: "invitation.lifetime_seconds must be between 60 (1m) and 604800 (7d)")
            }
            let (decision, version) = try await policies.explain(
                user: body.person, machine: body.machine, mode: body.mode ?? .view, ticket: body.ticket,
                at: body.at ?? Date(),
                invitation: body.invitation.map {
                    PolicySet.InvitationTerms(lifetime: .seconds($0.lifetimeSeconds), hasPassword: $0.password)
                })
            return try Response.encodedJSON(ExplainDocument(decision, version: version))
        }
    }
}

struct ExplainDocument: Encodable {
    struct Exclusion: Encodable {
        var policy: String
        var entry: String
    }

    var allowed: Bool
    var access: String?
    var policies: [String]
    var explanation: String
    var exclusions: [Exclusion]
    var consentTimeoutSeconds: Int64?
    var maxDurationSeconds: Int64?
    var policyVersion: Int64?

    init(_ decision: Decision, version: Int64?) {
        allowed = decision.isAllowed
        access = decision.allowed?.rawValue
        policies = decision.policies
        explanation = decision.explanation
        exclusions = decision.exclusions.map { Exclusion(policy: $0.policy, entry: $0.entry) }
        consentTimeoutSeconds = decision.consentTimeout?.components.seconds
        maxDurationSeconds = decision.maximumDuration?.components.seconds
        policyVersion = version
    }

    enum CodingKeys: String, CodingKey {
        case allowed, access, policies, explanation, exclusions
        case consentTimeoutSeconds = "consent_timeout_seconds"
        case maxDurationSeconds = "max_duration_seconds"
        case policyVersion = "policy_version"
    }
}

/// What changed between two policy versions, as `GET /api/v1/policy/diff` answers.
struct PolicyDiffDocument: Encodable {
    struct Changed: Encodable {
        var name: String
        var fields: [Field]
    }

    struct Field: Encodable {
        var field: String
        var removed: [String]
        var added: [String]
        var summary: String
    }

    var from: Int64
    var to: Int64
    var added: [String]
    var removed: [String]
    var changed: [Changed]
    var rolesChanged: Bool

    init(from: Int64, to: Int64, diff: PolicyDiff, fields: [(policy: String, changes: [PolicyFieldChange])]) {
        self.from = from
        self.to = to
        added = diff.added
        removed = diff.removed
        changed = fields.map { entry in
            Changed(
                name: entry.policy,
                fields: entry.changes.map {
                    Field(field: $0.field, removed: $0.removed, added: $0.added, summary: $0.summary)
                })
        }
        rolesChanged = diff.rolesChanged
    }

    enum CodingKeys: String, CodingKey {
        case from, to, added, removed, changed
        case rolesChanged = "roles_changed"
    }
}
