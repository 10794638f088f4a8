import NIOCore
import NIOEmbedded
import ORACore
import ORARelay
import Testing

@Suite("The relay port's opening line")
struct ScreenStreamTests {
    static let ticket = String(repeating: "ab", count: 32)

    @Test("a request names the leg and the ticket, and is read back as it was written")
    func roundTrip() {
        let line = ScreenStream.request(leg: .viewer, ticket: Self.ticket)
        #expect(line == "ORA-SCREEN/1 viewer \(Self.ticket)\n")
        let parsed = ScreenStream.parseRequest(String(line.dropLast()))
        #expect(parsed?.leg == .viewer && parsed?.ticket == Self.ticket)
        #expect(ScreenStream.parseRequest("ORA-SCREEN/1 agent \(Self.ticket)")?.leg == .agent)
        #expect(parsed?.carried == false)
        // A leg one replica carries to another says so after the ticket.
        let carried = ScreenStream.request(leg: .agent, ticket: Self.ticket, carried: true)
        #expect(carried == "ORA-SCREEN/1 agent \(Self.ticket) carried\n")
        let back = ScreenStream.parseRequest(String(carried.dropLast()))
        #expect(back?.leg == .agent && back?.ticket == Self.ticket && back?.carried == true)
    }

    @Test(
        "anything else is not a request",
        arguments: [
            "", "GET / HTTP/1.1", "ORA-SCREEN/2 viewer \(ticket)", "ORA-SCREEN/1 helper \(ticket)",
            "ORA-SCREEN/1 viewer abc", "ORA-SCREEN/1 viewer \(String(repeating: "zz", count: 32))",
            "ORA-SCREEN/1 viewer \(ticket) extra", "ORA-SCREEN/1 viewer \(ticket) carried ",
            "ORA-SCREEN/1 viewer \(ticket) carried carried", "ORA-SCREEN/1  viewer \(ticket)",
            "ORA-SCREEN/1 viewer \(ticket)\r",
            // Full-width digits are hex digits to Character.isHexDigit, but not to a ticket.
            "ORA-SCREEN/1 viewer \(String(repeating: "\u{FF10}\u{FF11}", count: 32))",
        ])
    func notARequest(_ line: String) {
        #expect(ScreenStream.parseRequest(line) == nil)
    }

    @Test("a line is read across reads, and what follows it in the same read is kept")
    func readLine() async throws {
        var chunks = [ByteBuffer(string: "ORA-SCREEN/1 o"), ByteBuffer(string: "k\nRFB 003.008\n")]
        let (line, rest) = try await ScreenStream.readLine { chunks.isEmpty ? nil : chunks.removeFirst() }
        #expect(line == "ORA-SCREEN/1 ok")
        #expect(String(buffer: rest) == "RFB 003.008\n")
    }

    @Test(
        "a line longer than the limit, also with its newline in the same read, or a stream that ends first, is refused")
    func badLines() async throws {
        var long = [ByteBuffer(string: String(repeating: "a", count: ScreenStream.maximumLineLength + 1))]
        await #expect(throws: ScreenStream.LineTooLong.self) {
            _ = try await ScreenStream.readLine { long.isEmpty ? nil : long.removeFirst() }
        }
        var longWithNewline = [
            ByteBuffer(string: String(repeating: "a", count: ScreenStream.maximumLineLength + 1) + "\nrest")
        ]
        await #expect(throws: ScreenStream.LineTooLong.self) {
            _ = try await ScreenStream.readLine { longWithNewline.isEmpty ? nil : longWithNewline.removeFirst() }
        }
        var longest = [ByteBuffer(string: String(repeating: "a", count: ScreenStream.maximumLineLength) + "\n")]
        let (line, _) = try await ScreenStream.readLine { longest.isEmpty ? nil : longest.removeFirst() }
        #expect(line.utf8.count == ScreenStream.maximumLineLength)
        var cut = [ByteBuffer(string: "ORA-SCREEN/1 ")]
        await #expect(throws: RFBStreamError.truncated) {
            _ = try await ScreenStream.readLine { cut.isEmpty ? nil : cut.removeFirst() }
        }
    }

    @Test("a refusal from the server is Refused; the answer's rest is returned")
    func open() async throws {
        var written: [String] = []
        var answers = [ByteBuffer(string: "ORA-SCREEN/1 ok\nxy")]
        let rest = try await ScreenStream.open(
            leg: .agent, ticket: Self.ticket, write: { written.append(String(buffer: $0)) },
            next: { answers.isEmpty ? nil : answers.removeFirst() })
        #expect(written == ["ORA-SCREEN/1 agent \(Self.ticket)\n"])
        #expect(String(buffer: rest) == "xy")
        var refused = [ByteBuffer(string: "no\n")]
        await #expect(throws: ScreenStream.Refused.self) {
            _ = try await ScreenStream.open(
                leg: .viewer, ticket: Self.ticket, write: { _ in },
                next: { refused.isEmpty ? nil : refused.removeFirst() })
        }
    }

    /// A connection to another server's relay port, opened with a line already sent, reading the answer.
    func answering() throws -> (EmbeddedChannel, ScreenOpeningHandler, EventLoopFuture<Void>) {
        let channel = EmbeddedChannel()
        let answered = channel.eventLoop.makePromise(of: Void.self)
        let opening = ScreenOpeningHandler(answered: answered, within: .seconds(20))
        try channel.pipeline.syncOperations.addHandler(opening)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8081)).wait()
        return (channel, opening, answered.futureResult)
    }

    @Test("another server's answer: `ok` admits, and what follows waits until forwarding starts")
    func answeredAccepted() throws {
        let (channel, opening, answered) = try answering()
        try channel.writeInbound(ByteBuffer(string: "ORA-SCREEN/1 ok\nRFB 003.008\n"))
        try answered.wait()
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "nothing passes before it is paired")
        opening.startForwarding()
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "RFB 003.008\n"))
        try channel.writeInbound(ByteBuffer(string: "more"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "more"))
    }

    @Test("another server's answer: any other line, or the connection closing first, refuses and closes")
    func answeredRefused() throws {
        let (refusing, _, refused) = try answering()
        try refusing.writeInbound(ByteBuffer(string: "ORA-SCREEN/1 no\n"))
        #expect(throws: ScreenStream.Refused.self) { try refused.wait() }
        #expect(!refusing.isActive)
        let (closing, _, closed) = try answering()
        try closing.writeInbound(ByteBuffer(string: "ORA-SCR"))
        try closing.close().wait()
        #expect(throws: ScreenStream.Refused.self) { try closed.wait() }
    }
}
