import Foundation
import HTTPTypes
import ORACore
import ORADirectory
import Testing

@testable import ORAServer

@Suite("Service errors at the HTTP edge")
struct ServiceErrorTests {
    @Test(
        "each kind of failure has its one status",
        arguments: [
            (ServiceErrorKind.invalid, HTTPResponse.Status.badRequest),
            (.invalidContent, .unprocessableContent),
            (.unauthenticated, .unauthorized),
            (.notLoggedIn, .unauthorized),
            (.forbidden, .forbidden),
            (.notFound, .notFound),
            (.conflict, .conflict),
            (.limited(retryAfter: .seconds(5)), .tooManyRequests),
            (.unavailable, .serviceUnavailable),
            (.unusableDirectoryAnswer, .badGateway),
            (.internal, .internalServerError),
        ])
    func statuses(kind: ServiceErrorKind, status: HTTPResponse.Status) {
        let refusal = ReplicaRefusal(code: "example", message: "an example", kind: kind)
        let answer = APIError(refusal)
        #expect(answer.status == status)
        #expect(answer.code == "example")
        #expect(answer.message == "an example")
    }

    @Test(
        "a limit says when to try again, in whole seconds rounded up, at least one; a missing login says how to log in")
    func headers() {
        let offers = APIError(SessionError.tooManyOffers(machine: "ws-0101", recent: 3, retryAfter: .seconds(60)))
        #expect(offers.status == .tooManyRequests)
        #expect(offers.code == "too_many_offers")
        #expect(offers.headers[.retryAfter] == "60")
        #expect(offers.message == "ws-0101 was offered help 3 times in the last minute; wait a moment")
        #expect(APIError(OperatorError.tooManyAttempts(retryAfterSeconds: 17)).headers[.retryAfter] == "17")
        let soon = SessionError.tooManyOffers(machine: "ws-0101", recent: 3, retryAfter: .milliseconds(59_950))
        #expect(APIError(soon).headers[.retryAfter] == "60", "rounded up")
        #expect(
            APIError(ReplicaRefusal(code: "x", message: "x", kind: .limited(retryAfter: .milliseconds(20))))
                .headers[.retryAfter] == "1")

        let missing = APIError(OperatorError.notLoggedIn)
        #expect(missing.status == .unauthorized)
        #expect(missing.code == "invalid_token")
        #expect(missing.headers[.wwwAuthenticate] == "Bearer realm=\"ora\"")
        let wrong = APIError(OperatorError.invalidCredentials)
        #expect(wrong.status == .unauthorized)
        #expect(wrong.headers[.wwwAuthenticate] == nil, "wrong credentials are not a missing login")
    }

    @Test("a policy set's mistakes travel as the answer's list of errors")
    func mistakes() {
        let answer = APIError(PolicyError.invalidPolicySet(mistakes: ["a.yaml:3:5: unknown key", "b.yaml:1:1: empty"]))
        #expect(answer.status == .unprocessableContent)
        #expect(answer.code == "invalid_policy")
        #expect(answer.errors == ["a.yaml:3:5: unknown key", "b.yaml:1:1: empty"])
        #expect(APIError(PolicyError.conflict("version 4 is active now")).errors.isEmpty)
    }

    @Test("an error of another service keeps its code and kind where it is passed on")
    func passedOn() {
        let unknown = SessionError.machine(.unknownMachine("ws-0404"))
        #expect(unknown.code == "unknown_machine")
        #expect(unknown.kind == .notFound)
        #expect(unknown.message == "no machine named ws-0404 is enrolled")
        let directory = SessionError.directory(.unavailable(reason: "connection refused"))
        #expect(directory.code == "directory_unavailable")
        #expect(directory.kind == .unavailable)
        #expect(!directory.message.contains("connection refused"), "the cause is for the server's log only")
        #expect(PolicyError.directory(.failed(reason: "size limit")).kind == .unusableDirectoryAnswer)
    }

    @Test("a refusal crosses to another replica as code, sentence and kind, and is refused the same there")
    func replicas() throws {
        let original = SessionError.tooManyOffers(machine: "ws-0101", recent: 3, retryAfter: .seconds(60))
        let answer = ReplicaAnswer.refused(ReplicaRefusal(original))
        let decoded = try JSONDecoder().decode(ReplicaAnswer.self, from: JSONEncoder().encode(answer))
        #expect(throws: SessionError.refusedElsewhere(ReplicaRefusal(original))) { try decoded.session() }
        let there = APIError(SessionError.refusedElsewhere(ReplicaRefusal(original)))
        let here = APIError(original)
        #expect(there.status == here.status)
        #expect(there.code == here.code)
        #expect(there.message == here.message)
        #expect(there.headers[.retryAfter] == here.headers[.retryAfter])
        #expect(throws: SessionError.noSessionInAnswer) { try ReplicaAnswer.done.session() }
    }
}
