import Foundation
import Hummingbird
import ORACore
import ORADirectory
import ORAStore

/// The JSON body of `PUT /api/v1/policy`.
struct PolicyApplyRequest: Decodable {
    var files: [PolicySet.File]
    var comment: String?
    /// The active version the change was reviewed against; omitted, the change applies over whatever is active.
    var basedOn: Int64?
    var basedOnNothing: Bool?

    enum CodingKeys: String, CodingKey {
        case files, comment
        case basedOn = "based_on"
        case basedOnNothing = "based_on_nothing"
    }
}

struct PolicyRollbackRequest: Decodable {
    var version: Int64
    var comment: String?
}

struct PolicyExplainRequest: Decodable {
    var person: String
    var machine: String
    var mode: AccessMode?
    var ticket: String?
    var at: Date?

    enum CodingKeys: String, CodingKey {
        case person = "operator"
        case machine, mode, ticket, at
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
    }
    var activation: PolicyStore.Activation?
    var policies: [Summary]
    var files: [PolicySet.File]
}

extension Router where Context == ORARequestContext {
    /// Adds the policy API: read (administrators and auditors), apply and roll back (administrators), explain.
    func addPolicyRoutes(
        policies: PolicyService, store: PolicyStore, operators: OperatorService, directory: DirectoryClient
    ) {
        let api = group("api/v1/policy").add(middleware: OperatorAuthenticationMiddleware(service: operators))
        let readers: Set<OperatorRole> = [.administrator, .auditor]

        api.get { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "read the policy")
            let active = policies.active
            return try Response.encodedJSON(
                PolicyDocument(
                    activation: active.activation,
                    policies: active.set.policies.map { policy in
                        let access: String? = if case .allow(let mode) = policy.effect { mode.rawValue } else { nil }
                        return PolicyDocument.Summary(
                            name: policy.name, description: policy.description,
                            effect: access == nil ? "deny" : "allow", access: access,
                            location: policy.location.description)
                    },
                    files: active.set.files))
        }

        api.get("versions") { _, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "read the policy history")
            do {
                return try Response.encodedJSON(try await store.history())
            } catch {
                throw APIError.databaseUnavailable()
            }
        }

        api.put { request, context -> Response in
            let identity = try await operators.require([.administrator], of: context.session, toDo: "apply policy")
            let body: PolicyApplyRequest
            do {
                body = try await request.decode(as: PolicyApplyRequest.self, context: context)
            } catch {
                throw APIError(
                    .badRequest, code: "invalid_request",
                    message: "expected {\"files\": [{\"name\", \"content\"}], \"comment\", \"based_on\"}")
            }
            let set: PolicySet
            do {
                set = try PolicyParser.parse(body.files)
            } catch let error as PolicyErrors {
                return try Response.encodedJSON(
                    InvalidPolicyDocument(
                        error: "invalid_policy", message: "the policy set has mistakes; nothing was changed",
                        errors: error.errors.map(\.description)),
                    status: .unprocessableContent)
            }
            let outcome: PolicyStore.ApplyOutcome
            do {
                outcome = try await store.apply(
                    set, author: identity.person.dn, comment: body.comment,
                    expectedActive: body.basedOn, checkExpected: body.basedOn != nil || body.basedOnNothing == true)
            } catch let conflict as PolicyStore.ConflictError {
                throw APIError(.conflict, code: "conflict", message: conflict.description)
            } catch {
                throw APIError.databaseUnavailable()
            }
            try? await policies.reload()
            switch outcome {
            case .applied(let version):
                return try Response.encodedJSON(["outcome": "applied", "version": "\(version)"])
            case .unchanged(let version):
                return try Response.encodedJSON(["outcome": "unchanged", "version": "\(version)"])
            }
        }

        api.post("rollback") { request, context -> Response in
            let identity = try await operators.require([.administrator], of: context.session, toDo: "roll policy back")
            guard let body = try? await request.decode(as: PolicyRollbackRequest.self, context: context) else {
                throw APIError(.badRequest, code: "invalid_request", message: "expected {\"version\": N, \"comment\"}")
            }
            do {
                try await store.rollback(to: body.version, actor: identity.person.dn, comment: body.comment)
            } catch let conflict as PolicyStore.ConflictError {
                throw APIError(.notFound, code: "unknown_version", message: conflict.description)
            } catch {
                throw APIError.databaseUnavailable()
            }
            try? await policies.reload()
            return try Response.encodedJSON(["outcome": "rolled_back", "version": "\(body.version)"])
        }

        api.post("explain") { request, context -> Response in
            _ = try await operators.require(readers, of: context.session, toDo: "explain policy decisions")
            guard let body = try? await request.decode(as: PolicyExplainRequest.self, context: context) else {
                throw APIError(
                    .badRequest, code: "invalid_request",
                    message: "expected {\"operator\", \"machine\", \"mode\", \"ticket\", \"at\"}")
            }
            let decision: Decision
            let version: Int64?
            do {
                guard let person = try await directory.person(named: body.person) else {
                    throw APIError(
                        .notFound, code: "unknown_operator", message: "no single person is named \(body.person)")
                }
                guard let computer = try await directory.computer(named: body.machine) else {
                    throw APIError(
                        .notFound, code: "unknown_machine", message: "no computer object is named \(body.machine)")
                }
                let groups = try await directory.groups(of: try DistinguishedName(person.dn))
                let active = policies.active
                version = active.activation?.version
                decision = active.set.decide(
                    operatorGroups: groups, machine: MachineFacts(computer), mode: body.mode ?? .view,
                    ticket: body.ticket, at: body.at ?? Date())
            } catch let error as APIError {
                throw error
            } catch {
                throw APIError.directoryUnavailable()
            }
            return try Response.encodedJSON(ExplainDocument(decision, version: version))
        }
    }
}

struct InvalidPolicyDocument: Encodable {
    var error: String
    var message: String
    var errors: [String]
}

struct ExplainDocument: Encodable {
    var allowed: Bool
    var access: String?
    var policies: [String]
    var explanation: String
    var consentTimeoutSeconds: Int64?
    var maxDurationSeconds: Int64?
    var policyVersion: Int64?

    init(_ decision: Decision, version: Int64?) {
        allowed = decision.isAllowed
        access = decision.allowed?.rawValue
        policies = decision.policies
        explanation = decision.explanation
        consentTimeoutSeconds = decision.consentTimeout?.components.seconds
        maxDurationSeconds = decision.maximumDuration?.components.seconds
        policyVersion = version
    }

    enum CodingKeys: String, CodingKey {
        case allowed, access, policies, explanation
        case consentTimeoutSeconds = "consent_timeout_seconds"
        case maxDurationSeconds = "max_duration_seconds"
        case policyVersion = "policy_version"
    }
}
