import Foundation
import Hummingbird
import NIOCore
import ORACore
import ORAStore

/// The JSON body of `POST /api/v1/sessions/{id}/chat`.
struct ChatRequest: Decodable {
    var text: String
}

/// A chat line as the API shows it: live (numbered as delivered) or from the audit log, where the text may be kept
/// only as its digest.
struct ChatMessageDocument: Encodable {
    var sequence: Int
    var from: ChatMessage.Author
    var name: String
    var text: String?
    var digest: String?
    var at: Date

    init(_ message: ChatMessage) {
        sequence = message.sequence
        from = message.from
        name = message.name
        text = message.text
        at = message.at
    }

    /// The line a `chat.message` event records, as the `sequence`-th of its session; `nil` for another event.
    init?(_ event: AuditEvent, sequence: Int) {
        guard event.name == AuditEventType.chatMessage.name,
            case .string(let from) = event.details["from"], let author = ChatMessage.Author(rawValue: from)
        else { return nil }
        self.sequence = sequence
        self.from = author
        if case .string(let name) = event.details["name"] { self.name = name } else { self.name = event.actor.id }
        if case .string(let text) = event.details["text"] { self.text = text }
        if case .string(let digest) = event.details["digest"] { self.digest = digest }
        at = event.time.date
    }
}

/// What `GET /api/v1/sessions/{id}/chat` answers: the session's chat so far, from the audit log.
struct ChatTranscriptDocument: Encodable {
    var messages: [ChatMessageDocument]
}

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
    var computerDN: String?
    var directoryCheckedAt: Date?

    init(_ machine: MachineDirectory.HelperMachine) {
        name = machine.machine.name
        online = machine.machine.online
        revoked = machine.machine.revokedAt != nil
        access = machine.access?.rawValue ?? "none"
        explanation = machine.explanation
        lastSeenAt = machine.machine.lastSeenAt
        computerDN = machine.machine.directory?.computer?.dn.original
        directoryCheckedAt = machine.machine.directory?.checkedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, online, revoked, access, explanation
        case lastSeenAt = "last_seen_at"
        case computerDN = "computer_dn"
        case directoryCheckedAt = "directory_checked_at"
    }
}

/// What `GET /api/v1/machines` answers: a page of machines, the cursor of the next and how many match.
struct HelperMachinePageDocument: Encodable {
    var machines: [HelperMachineDocument]
    var next: String?
    var matched: Int
}

/// What `GET /api/v1/machines/scopes` answers: the OUs and groups machines lie in, to search by.
struct MachineScopesDocument: Encodable {
    struct Scope: Encodable {
        var dn: String
        var machines: Int
        init(_ scope: MachineStore.Scope) {
            dn = scope.dn.original
            machines = scope.machines
        }
    }

    var containers: [Scope]
    var groups: [Scope]
}

extension Router where Context == ORARequestContext {
    /// Adds offers, sessions and the helper's machine list.
    func addSessionRoutes(
        sessions: SessionRouting,
        screens: ScreenService,
        machines: MachineDirectory,
        operators: OperatorService,
        audit: AuditService
    ) {
        let api = group("api/v1").add(middleware: OperatorAuthenticationMiddleware(service: operators))

        api.get("machines") { request, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            var parameters = try QueryParameters(request)
            let search = MachineStore.MachineSearch(
                nameContains: try parameters.text("q", atMost: 200),
                container: try parameters.distinguishedName("ou"),
                group: try parameters.distinguishedName("group"),
                onlineOnly: try parameters.boolean("online") ?? false)
            let access = try parameters.choice("access", of: AccessMode.self)
            let after = try parameters.text("after", atMost: 200)
            let limit = try parameters.integer("limit", in: 1...Int64(MachineDirectory.largestPage)) ?? 100
            try parameters.rejectUnknown()
            let page = try await machines.search(
                search, accessAtLeast: access, after: after?.lowercased(), limit: Int(limit),
                for: Set(identity.groups))
            return try Response.encodedJSON(
                HelperMachinePageDocument(
                    machines: page.machines.map(HelperMachineDocument.init), next: page.next, matched: page.matched))
        }

        api.get("machines/scopes") { _, context -> Response in
            _ = try await operators.identity(ofRequest: context.session)
            let scopes = try await machines.scopes()
            return try Response.encodedJSON(
                MachineScopesDocument(
                    containers: scopes.containers.map(MachineScopesDocument.Scope.init),
                    groups: scopes.groups.map(MachineScopesDocument.Scope.init)))
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
            return Response.eventStream(stream, holding: slot) { event, encoder in
                switch event {
                case .state(let snapshot): ("state", try encoder.encode(snapshot))
                case .chat(let message): ("chat", try encoder.encode(ChatMessageDocument(message)))
                }
            }
        }

        // A chat line to the person at the machine, as the session's helper.
        api.post("sessions/:id/chat") { request, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let body = try await request.decodeJSON(ChatRequest.self, context: context, expected: #"{"text"}"#)
            let message = try await sessions.chat(
                try context.sessionID(), text: body.text, by: identity, source: context.sourceAddress)
            return try Response.encodedJSON(ChatMessageDocument(message), status: .created)
        }

        // The session's chat so far, as the audit log keeps it.
        api.get("sessions/:id/chat") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let id = try context.sessionID()
            _ = try await sessions.session(id, for: identity)
            let events = try await audit.timeline(ofSession: id).map(\.event)
                .filter { $0.name == AuditEventType.chatMessage.name }
            return try Response.encodedJSON(
                ChatTranscriptDocument(
                    messages: events.enumerated().compactMap {
                        ChatMessageDocument($0.element, sequence: $0.offset + 1)
                    }
                ))
        }

        api.post("sessions/:id/control") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            return try Response.encodedJSON(
                try await sessions.requestControl(try context.sessionID(), by: identity, source: context.sourceAddress))
        }

        // A single-use ticket for the session's screen, for its helper's viewer.
        api.post("sessions/:id/screen") { _, context -> Response in
            let identity = try await operators.identity(ofRequest: context.session)
            let ticket = try await sessions.screenTicket(
                try context.sessionID(), by: identity, screens: screens, source: context.sourceAddress)
            return try Response.encodedJSON(ticket, status: .created)
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
