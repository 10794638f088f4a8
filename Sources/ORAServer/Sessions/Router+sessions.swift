import Foundation
import Hummingbird
import NIOCore
import ORACore
import ORAStore

/// The JSON body of `POST /api/v1/offers`.
struct OfferRequest: Decodable {
    var machine: String
    var mode: AccessMode?
    var ticket: String?
    var reason: String?
}

/// An enrolled machine as a helper sees it: whether it is online, and what this operator may do there now.
struct HelperMachineDocument: Encodable {
    var name: String
    var online: Bool
    var revoked: Bool
    var access: String
    var explanation: String
    var lastSeenAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, online, revoked, access, explanation
        case lastSeenAt = "last_seen_at"
    }
}

extension Router where Context == ORARequestContext {
    /// Adds offers, sessions and the helper's machine list.
    func addSessionRoutes(
        sessions: SessionRouting,
        screens: ScreenService,
        agents: AgentService,
        policies: PolicyService,
        operators: OperatorService
    ) {
        let api = group("api/v1").add(middleware: OperatorAuthenticationMiddleware(service: operators))

        api.get("machines") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let online = try await sessions.onlineMachines()
            var documents: [HelperMachineDocument] = []
            for machine in try await agents.machines() {
                let (access, explanation) = try await policies.strongestOffer(
                    groups: identity.groups, machine: machine.name, at: Date())
                documents.append(
                    HelperMachineDocument(
                        name: machine.name, online: online.contains(machine.name), revoked: machine.revokedAt != nil,
                        access: machine.revokedAt == nil ? access?.rawValue ?? "none" : "none",
                        explanation: machine.revokedAt == nil ? explanation : "the machine's enrollment is revoked",
                        lastSeenAt: machine.lastSeenAt))
            }
            return try Response.encodedJSON(documents)
        }

        api.post("offers") { request, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let body = try await request.decodeJSON(
                OfferRequest.self, context: context, expected: #"{"machine", "mode", "ticket", "reason"}"#)
            let created = try await sessions.offer(
                by: identity, to: body.machine, mode: body.mode ?? .view, ticket: body.ticket, reason: body.reason,
                source: context.sourceAddress)
            return try Response.encodedJSON(created, status: .created)
        }

        api.get("sessions") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            return try Response.encodedJSON(try await sessions.sessions(for: identity))
        }

        api.get("sessions/:id") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            return try Response.encodedJSON(try await sessions.session(try context.sessionID(), for: identity))
        }

        // Server-sent events: the session's state now and at every change, until it ends; at most
        // `EventStreamSlots.perOperator` open per operator.
        let slots = EventStreamSlots()
        api.get("sessions/:id/events") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            guard let slot = slots.take(for: identity.person.dn) else {
                throw APIError(
                    .tooManyRequests, code: "too_many_streams",
                    message:
                        "you follow \(slots.perOperator) sessions at once already; close one (a browser tab, an ora offer --wait) first",
                    headers: [.retryAfter: "5"])
            }
            let stream = try await sessions.watch(try context.sessionID(), for: identity)
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-store"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    // Held while the stream is written; freed when the response is gone.
                    defer { _ = slot }
                    let encoder = JSONEncoder()
                    encoder.dateEncodingStrategy = .iso8601
                    encoder.outputFormatting = [.sortedKeys]
                    for await snapshot in stream {
                        let json = String(decoding: try encoder.encode(snapshot), as: UTF8.self)
                        try await writer.write(ByteBuffer(string: "event: state\ndata: \(json)\n\n"))
                    }
                    try await writer.finish(nil)
                })
        }

        api.post("sessions/:id/control") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            return try Response.encodedJSON(
                try await sessions.requestControl(try context.sessionID(), by: identity, source: context.sourceAddress))
        }

        // A single-use ticket for the session's screen, for its helper's viewer.
        api.post("sessions/:id/screen") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let snapshot = try await sessions.session(try context.sessionID(), for: identity)
            return try Response.encodedJSON(try screens.viewerTicket(for: snapshot, by: identity), status: .created)
        }

        api.delete("sessions/:id") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            return try Response.encodedJSON(
                try await sessions.end(try context.sessionID(), by: identity, source: context.sourceAddress))
        }
    }
}

extension ORARequestContext {
    /// The `:id` path parameter as a session id, or 404.
    func sessionID() throws -> UUID {
        guard let text = parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError(.notFound, code: "unknown_session", message: "no such session")
        }
        return id
    }
}
