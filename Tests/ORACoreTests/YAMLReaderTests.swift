import ORACore
import Testing

@Suite("Strict YAML reading with positions")
struct YAMLReaderTests {
    private func root(_ text: String) throws -> YAMLNode {
        try #require(try YAMLNode.parse(text, file: "settings.yaml"))
    }

    @Test("reads nested values with their types")
    func readsValues() throws {
        var mapping = try root(
            """
            server:
              port: 8080
              enabled: true
              timeout: 5s
              names: [a, b]
            """
        ).mapping()
        var server = try mapping.required("server").mapping()
        #expect(try server.required("port").integer(in: 1...65535) == 8080)
        #expect(try server.required("enabled").bool() == true)
        #expect(try server.required("timeout").duration() == .seconds(5))
        #expect(try server.required("names").list().map { try $0.string() } == ["a", "b"])
        try server.rejectUnknownKeys()
        try mapping.rejectUnknownKeys()
    }

    @Test("an unknown key is reported with its position and the allowed keys")
    func unknownKey() throws {
        var mapping = try root("name: x\ncolour: blue\n").mapping()
        _ = mapping.optional("name")
        let error = #expect(throws: YAMLError.self) { try mapping.rejectUnknownKeys() }
        #expect(error?.description == "settings.yaml:2:1: colour: unknown setting (allowed here: name)")
    }

    @Test("a missing required key names the full path")
    func missingKey() throws {
        var mapping = try root("database:\n  host: db\n").mapping()
        var database = try mapping.required("database").mapping()
        let error = #expect(throws: YAMLError.self) { try database.required("name") }
        #expect(error?.keyPath == "database.name")
        #expect(error?.message == "is required")
    }

    @Test("a key given twice is an error, not a silent override")
    func duplicateKey() throws {
        let error = #expect(throws: YAMLError.self) { try root("host: a\nport: 1\nport: 2\n").mapping() }
        #expect(error?.message == "port is set twice in one mapping; keep one")
        #expect(error?.location?.file == "settings.yaml")
    }

    @Test("wrong types say what was expected and what was found")
    func wrongTypes() throws {
        var mapping = try root("port: eighty\nlist: text\nflag: yes\nsection: [1]\nwait: 5 minutes\n").mapping()
        let port = #expect(throws: YAMLError.self) { try mapping.required("port").integer(in: 1...65535) }
        #expect(
            port?.description == "settings.yaml:1:7: port: expected a whole number from 1 to 65535, found \"eighty\"")
        let list = #expect(throws: YAMLError.self) { try mapping.required("list").list() }
        #expect(list?.message == "expected a list, found the value \"text\"")
        let flag = #expect(throws: YAMLError.self) { try mapping.required("flag").bool() }
        #expect(flag?.message == "expected true or false, found \"yes\"")
        let section = #expect(throws: YAMLError.self) { try mapping.required("section").mapping() }
        #expect(section?.message == "expected a mapping of settings, found a list")
        let wait = #expect(throws: YAMLError.self) { try mapping.required("wait").duration() }
        #expect(wait?.message.hasPrefix("expected a duration such as") == true)
    }

    @Test("a syntax error carries the line and column")
    func syntaxError() throws {
        let error = #expect(throws: YAMLError.self) { try YAMLNode.parse("a: [1, 2\nb: 3\n", file: "bad.yaml") }
        #expect(error?.location?.file == "bad.yaml")
        #expect(error?.location?.line == 2)
        #expect(error?.message.hasPrefix("not valid YAML:") == true)
    }

    @Test("an explicit null counts as absent")
    func nullIsAbsent() throws {
        var mapping = try root("a: ~\nb: null\nc: \"null\"\n").mapping()
        #expect(mapping.optional("a") == nil)
        #expect(mapping.optional("b") == nil)
        #expect(try mapping.optional("c")?.string() == "null")
    }

    @Test("list elements carry indexed key paths")
    func listPaths() throws {
        var mapping = try root("uris:\n  - a\n  - [b]\n").mapping()
        let elements = try mapping.required("uris").list()
        let error = #expect(throws: YAMLError.self) { try elements[1].string() }
        #expect(error?.keyPath == "uris[1]")
        #expect(error?.location?.line == 3)
    }
}
