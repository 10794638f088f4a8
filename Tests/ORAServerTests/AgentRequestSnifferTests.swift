import Testing

@testable import ORAServer

@Suite("Telling agents' connections from the rest")
struct AgentRequestSnifferTests {
    typealias Sniffer = AgentRequestSniffer<Int>

    @Test("an agent's request line is recognised however it is cut, and only once it can be told")
    func agentRequests() {
        for line in ["GET /agent/v1/connect HTTP/1.1\r\n", "GET /agent/v1/connect?x=1 HTTP/1.1\r\n"] {
            let bytes = Array(line.utf8)
            let decided = (0...bytes.count).first { Sniffer.isAgent(bytes.prefix($0)) != nil }
            #expect(decided == "GET /agent/v1/connect ".utf8.count, "\(line)")
            #expect(Sniffer.isAgent(bytes) == true)
        }
    }

    @Test("anything else is told apart at its first differing byte")
    func others() {
        #expect(Sniffer.isAgent(Array("POST /agent/v1/connect HTTP/1.1".utf8)) == false)
        #expect(Sniffer.isAgent(Array("GET /agent/v1/connectx HTTP/1.1".utf8)) == false)
        #expect(Sniffer.isAgent(Array("GET /agent/v1/connect/ HTTP/1.1".utf8)) == false)
        #expect(Sniffer.isAgent(Array("GET /api/v1/machines HTTP/1.1".utf8)) == false)
        #expect(Sniffer.isAgent(Array("GET /a".utf8)) == nil)
        #expect(Sniffer.isAgent(Array("GET /b".utf8)) == false)
        #expect(Sniffer.isAgent(Array("\u{16}\u{03}\u{01}".utf8)) == false, "a TLS hello is not an agent's request")
        #expect(Sniffer.isAgent([UInt8]()) == nil)
    }
}
