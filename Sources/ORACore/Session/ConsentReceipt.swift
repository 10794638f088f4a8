public import Crypto
public import Foundation

/// The novice's answer to one question (the offer, or one control request), signed on the machine with its
/// device key. The server checks it and keeps it with the audit event; since only the agent holds the key, the
/// receipt proves that the answer was given on that machine, and a server cannot make one up.
public struct ConsentReceipt: Sendable, Hashable, Codable {
    /// Which question was answered.
    public enum Question: String, Sendable, Hashable, Codable {
        /// The offer itself: may the helper see the screen?
        case session
        /// A control request: may the helper use keyboard and mouse?
        case control
    }

    /// The machine that answered, by name.
    public var machine: String
    /// The session the question belongs to.
    public var session: UUID
    /// Which question.
    public var question: Question
    /// 0 for the offer; n for the session's n-th control request, so an answer cannot be replayed for another.
    public var request: Int
    /// The hash of the offer the novice was shown (`Offer.hash`).
    public var offerHash: String
    /// What the question asked for: the offer's mode, or `control`.
    public var mode: AccessMode
    /// The answer.
    public var answer: ConsentAnswer
    /// When the novice answered, by the machine's clock, as `AuditTimestamp` text.
    public var time: String
    /// Base64 of the P-256 ECDSA signature (64 raw bytes) over `signedMessage`.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case machine, session, question, request, mode, answer, time, signature
        case offerHash = "offer_hash"
    }

    /// Answers `question` about `offer` and signs the answer with the machine's device key.
    /// - Parameter request: 0 for the offer, n for the n-th control request.
    public init(
        answering question: Question,
        request: Int,
        of offer: Offer,
        answer: ConsentAnswer,
        at time: AuditTimestamp,
        signingWith key: P256.Signing.PrivateKey
    ) throws {
        self.machine = offer.machine
        self.session = offer.session
        self.question = question
        self.request = request
        self.offerHash = offer.hash
        self.mode = question == .control ? .control : offer.mode
        self.answer = answer
        self.time = time.description
        self.signature = ""
        self.signature = try key.base64Signature(for: signedMessage)
    }

    /// The exact bytes signed: canonical JSON of every field but the signature, with a purpose that no other
    /// signed message of ora has.
    public var signedMessage: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"answer\":")
        writer.string(answer.rawValue)
        writer.raw(",\"machine\":")
        writer.string(machine)
        writer.raw(",\"mode\":")
        writer.string(mode.rawValue)
        writer.raw(",\"offer_hash\":")
        writer.string(offerHash)
        writer.raw(",\"purpose\":\"ora.consent.v1\",\"question\":")
        writer.string(question.rawValue)
        writer.raw(",\"request\":")
        writer.raw(String(request))
        writer.raw(",\"session\":")
        writer.string(session.uuidString.lowercased())
        writer.raw(",\"time\":")
        writer.string(time)
        writer.raw("}")
        return writer.bytes
    }

    /// Checks that this receipt answers exactly the question the server asked, and that the machine signed it.
    /// - Parameters:
    ///   - offer: the offer the server sent.
    ///   - question: the question pending.
    ///   - request: the pending control request's number, or 0 for the offer.
    ///   - key: the machine's enrolled device key.
    /// - Throws: `ConsentReceiptError` naming the first mismatch.
    public func verify(
        answering question: Question,
        request: Int,
        of offer: Offer,
        with key: P256.Signing.PublicKey
    ) throws(ConsentReceiptError) {
        guard isSigned(by: key) else { throw .badSignature }
        guard machine == offer.machine else { throw .wrongMachine(machine) }
        guard session == offer.session else { throw .wrongSession(session) }
        guard self.question == question else { throw .wrongQuestion(self.question) }
        guard self.request == request else { throw .wrongRequest(expected: request, received: self.request) }
        guard offerHash == offer.hash else { throw .differentOffer }
        guard mode == (question == .control ? .control : offer.mode) else { throw .wrongMode(mode) }
    }
}

extension ConsentReceipt {
    /// The receipt as the audit log keeps it, in an event's `details.receipt`.
    public var auditValue: AuditValue {
        .object([
            "machine": .string(machine), "session": .string(session.uuidString.lowercased()),
            "question": .string(question.rawValue), "request": .integer(Int64(request)),
            "offer_hash": .string(offerHash), "mode": .string(mode.rawValue), "answer": .string(answer.rawValue),
            "time": .string(time), "signature": .string(signature),
        ])
    }

    /// The receipt an audit event's `details.receipt` holds, or `nil` when it is not one.
    public init?(auditValue: AuditValue) {
        guard case .object(let fields) = auditValue,
            let machine = fields["machine"]?.stringValue,
            let session = fields["session"]?.stringValue.flatMap(UUID.init(uuidString:)),
            let question = fields["question"]?.stringValue.flatMap(Question.init(rawValue:)),
            case .integer(let request) = fields["request"],
            let offerHash = fields["offer_hash"]?.stringValue,
            let mode = fields["mode"]?.stringValue.flatMap(AccessMode.init(rawValue:)),
            let answer = fields["answer"]?.stringValue.flatMap(ConsentAnswer.init(rawValue:)),
            let time = fields["time"]?.stringValue,
            let signature = fields["signature"]?.stringValue
        else { return nil }
        self.machine = machine
        self.session = session
        self.question = question
        self.request = Int(request)
        self.offerHash = offerHash
        self.mode = mode
        self.answer = answer
        self.time = time
        self.signature = signature
    }

    /// Whether the signature is `key`'s, over this receipt exactly.
    public func isSigned(by key: P256.Signing.PublicKey) -> Bool {
        key.isValid(base64Signature: signature, for: signedMessage)
    }
}

/// Why a consent receipt was refused. A refused receipt is never taken as an answer; the server audits it.
public enum ConsentReceiptError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The signature is missing, malformed or not the machine's.
    case badSignature
    /// The receipt names another machine.
    case wrongMachine(String)
    /// The receipt belongs to another session.
    case wrongSession(UUID)
    /// The receipt answers the other question (the offer instead of control, or the reverse).
    case wrongQuestion(ConsentReceipt.Question)
    /// The receipt answers an earlier or later control request: a replay.
    case wrongRequest(expected: Int, received: Int)
    /// The receipt names an offer other than the one sent.
    case differentOffer
    /// The receipt answers for another access mode.
    case wrongMode(AccessMode)

    /// A short stable name, for the audit log and the API.
    public var code: String {
        switch self {
        case .badSignature: "bad_signature"
        case .wrongMachine: "wrong_machine"
        case .wrongSession: "wrong_session"
        case .wrongQuestion: "wrong_question"
        case .wrongRequest: "replayed_request"
        case .differentOffer: "different_offer"
        case .wrongMode: "wrong_mode"
        }
    }

    public var description: String {
        switch self {
        case .badSignature: "the consent is not signed with the machine's enrolled device key"
        case .wrongMachine: "the consent was given for another machine"
        case .wrongSession: "the consent was given for another session"
        case .wrongQuestion(let question):
            "the consent answers the \(question == .session ? "offer" : "control request"), not the question asked"
        case .wrongRequest(let expected, let received):
            "the consent answers control request \(received), not the pending request \(expected)"
        case .differentOffer: "the consent was given for a different offer than the one sent"
        case .wrongMode(let mode): "the consent was given for \(mode.rawValue), not for what was asked"
        }
    }
}
