import Foundation
import ORACore
import Testing

@Suite("UUIDs for audit events")
struct UUIDTests {
    @Test("random UUIDs are version 4 with the RFC 4122 variant, and differ")
    func random() {
        let made = (0..<10_000).map { _ in UUID.random() }
        #expect(Set(made).count == made.count)
        for id in made {
            let text = id.uuidString
            #expect(Array(text)[14] == "4", "\(text)")
            #expect("89AB".contains(Array(text)[19]), "\(text)")
        }
    }

    @Test("the lower-case text is Foundation's, lowered")
    func text() throws {
        for id in (0..<1_000).map({ _ in UUID() }) + [
            try #require(UUID(uuidString: "00000000-0000-0000-0000-00000000000F"))
        ] {
            #expect(id.lowercasedText == id.uuidString.lowercased())
        }
    }
}
