import ORARelay
import Testing

@Suite("The viewer's RFB stream: what reaches the desktop")
struct RFBClientStreamFilterTests {
    /// ProtocolVersion 3.8, security type None, ClientInit (shared).
    static let handshake: [UInt8] = Array("RFB 003.008\n".utf8) + [1, 1]
    static let setPixelFormat: [UInt8] = [0, 0, 0, 0] + [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]
    static let setEncodings: [UInt8] = [2, 0, 0, 2, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x21]
    static let updateRequest: [UInt8] = [3, 1, 0, 0, 0, 0, 0x04, 0x00, 0x03, 0x00]
    static let keyDown: [UInt8] = [4, 1, 0, 0, 0, 0, 0, 0x61]
    static let pointer: [UInt8] = [5, 1, 0, 10, 0, 20]
    static let cutText: [UInt8] = [6, 0, 0, 0, 0, 0, 0, 5] + Array("hello".utf8)
    static let fence: [UInt8] = [248, 0, 0, 0, 0, 0, 0, 1, 2, 0xAA, 0xBB]
    static let continuous: [UInt8] = [150, 1, 0, 0, 0, 0, 0x04, 0x00, 0x03, 0x00]
    static let setDesktopSize: [UInt8] = [251, 0, 0x05, 0x00, 0x04, 0x00, 1, 0] + [UInt8](repeating: 0, count: 16)
    static let qemuKey: [UInt8] = [255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 30]
    static let xvpReboot: [UInt8] = [250, 0, 1, 3]

    static let viewing = setPixelFormat + setEncodings + updateRequest + fence + continuous
    static let input = keyDown + pointer + cutText + setDesktopSize + qemuKey + xvpReboot

    @Test("view only: requests to see the screen pass; every kind of input is dropped and counted")
    func viewOnly() throws {
        var filter = RFBClientStreamFilter()
        let passed = try filter.filter(Self.handshake + Self.viewing + Self.input + Self.updateRequest)
        #expect(passed == Self.handshake + Self.viewing + Self.updateRequest)
        #expect(filter.droppedInputMessages == 6)
        try filter.finish()
    }

    @Test("with control granted input passes; taken back, it stops again from the next message")
    func controlGrantedAndTakenBack() throws {
        var filter = RFBClientStreamFilter()
        #expect(try filter.filter(Self.handshake + Self.keyDown) == Self.handshake)
        filter.controlGranted = true
        #expect(
            try filter.filter(Self.keyDown + Self.pointer + Self.cutText) == Self.keyDown + Self.pointer + Self.cutText)
        filter.controlGranted = false
        #expect(try filter.filter(Self.pointer + Self.updateRequest) == Self.updateRequest)
        #expect(filter.droppedInputMessages == 2)
    }

    @Test("what the helper holds down when control ends is released: keys, extended keys and buttons, once")
    func releaseHeld() throws {
        var filter = RFBClientStreamFilter(controlGranted: true)
        let control: [UInt8] = [4, 1, 0, 0, 0, 0, 0xFF, 0xE3]  // Control_L down
        let shift: [UInt8] = [4, 1, 0, 0, 0, 0, 0xFF, 0xE1]  // Shift_L down
        let shiftUp: [UInt8] = [4, 0, 0, 0, 0, 0, 0xFF, 0xE1]
        let button: [UInt8] = [5, 0b101, 0x01, 0x02, 0x00, 0x30]  // buttons 1 and 3 at (258, 48)
        _ = try filter.filter(Self.handshake + control + shift + shiftUp + button + Self.qemuKey)
        #expect(filter.holdsInput)
        #expect(filter.isAtMessageBoundary)
        filter.controlGranted = false
        // Dropped while view-only: the key-up and the button release never reached the desktop.
        _ = try filter.filter([4, 0, 0, 0, 0, 0, 0xFF, 0xE3] + [5, 0, 0, 0, 0, 0])
        let released = filter.releaseHeldInput()
        #expect(
            released
                == [4, 0, 0, 0, 0, 0, 0xFF, 0xE3] + [255, 0, 0, 0, 0, 0, 0, 0x61, 0, 0, 0, 30]
                + [5, 0, 0x01, 0x02, 0x00, 0x30])
        #expect(!filter.holdsInput)
        #expect(filter.releaseHeldInput().isEmpty)
        // What the released messages are, the filter itself reads as well-formed input.
        var reader = RFBClientStreamFilter(controlGranted: true)
        #expect(try reader.filter(Self.handshake + released) == Self.handshake + released)
        #expect(!reader.holdsInput)
    }

    @Test("input dropped while view-only is not remembered as held; half a message is not a boundary")
    func droppedNotHeld() throws {
        var filter = RFBClientStreamFilter()
        _ = try filter.filter(Self.handshake + Self.keyDown + Self.pointer)
        #expect(!filter.holdsInput)
        filter.controlGranted = true
        _ = try filter.filter(Array(Self.keyDown.prefix(5)))
        #expect(!filter.isAtMessageBoundary)
        _ = try filter.filter(Array(Self.keyDown.dropFirst(5)))
        #expect(filter.isAtMessageBoundary)
        #expect(filter.holdsInput)
    }

    @Test("the same decisions however the stream is cut into pieces, down to one byte at a time")
    func anySplit() throws {
        let stream = Self.handshake + Self.viewing + Self.input + Self.viewing
        var whole = RFBClientStreamFilter()
        let expected = try whole.filter(stream)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<200 {
            var filter = RFBClientStreamFilter()
            var output: [UInt8] = []
            var index = 0
            while index < stream.count {
                let size = round == 0 ? 1 : Int.random(in: 1...17, using: &generator)
                let end = min(stream.count, index + size)
                output += try filter.filter(stream[index..<end])
                index = end
            }
            #expect(output == expected)
            #expect(filter.droppedInputMessages == 6)
            try filter.finish()
        }
    }

    @Test("a clipboard text claiming 4 GiB closes the stream before anything is read or stored")
    func oversizedCutText() throws {
        var filter = RFBClientStreamFilter(controlGranted: true)
        _ = try filter.filter(Self.handshake)
        // Read as the Extended Clipboard's signed length that is -1: shorter than its 4 bytes of flags.
        #expect(throws: RFBStreamError.invalidLength(messageType: 6, length: 0xFFFF_FFFF)) {
            try filter.filter([6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
        }
        var negative = RFBClientStreamFilter(controlGranted: true)
        _ = try negative.filter(Self.handshake)
        #expect(throws: RFBStreamError.tooLong(messageType: 6, length: 0x8000_0000)) {
            try negative.filter([6, 0, 0, 0, 0x80, 0, 0, 0])
        }
        var limit = RFBClientStreamFilter(controlGranted: true)
        _ = try limit.filter(Self.handshake)
        let length = RFBLimits.maximumClientCutTextLength + 1
        #expect(throws: RFBStreamError.tooLong(messageType: 6, length: length)) {
            try limit.filter([
                6, 0, 0, 0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), 1,
            ])
        }
    }

    @Test(
        "the Extended Clipboard: the viewer's capabilities always pass, uncounted; clipboard content only with control"
    )
    func extendedClipboard() throws {
        // noVNC answers the desktop's capabilities with its own: caps, request, peek, notify and provide for the text
        // format, and the text format's size limit (0: none), 8 bytes in all, as length -8.
        let capabilities: [UInt8] = [6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xF8, 0x1F, 0x00, 0x00, 0x01, 0, 0, 0, 0]
        // "Provide" with 4 bytes of (compressed) text.
        let provide: [UInt8] = [6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xF8, 0x10, 0x00, 0x00, 0x01, 0x78, 0x9C, 0x01, 0x02]
        // The caps bit, but more than the size limits after it: content in disguise.
        let disguised: [UInt8] = [
            6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xF4, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x41, 0x42, 0x43, 0x44,
        ]
        var viewing = RFBClientStreamFilter()
        #expect(
            try viewing.filter(Self.handshake + capabilities + provide + disguised + Self.updateRequest)
                == Self.handshake + capabilities + Self.updateRequest)
        #expect(viewing.droppedInputMessages == 2)
        var controlling = RFBClientStreamFilter(controlGranted: true)
        let all = capabilities + provide + disguised
        #expect(try controlling.filter(Self.handshake + all) == Self.handshake + all)
        #expect(controlling.droppedInputMessages == 0)
    }

    @Test("hostile streams are refused with what was wrong")
    func hostile() throws {
        func refusal(_ bytes: [UInt8]) -> RFBStreamError? {
            var filter = RFBClientStreamFilter()
            do {
                _ = try filter.filter(bytes)
                try filter.finish()
                return nil
            } catch {
                return error
            }
        }
        #expect(refusal(Self.handshake + [7]) == .unknownMessage(7))
        #expect(refusal(Self.handshake + [255, 1, 0, 0]) == .unknownMessage(255))
        #expect(refusal(Array("RFB 004.000\n".utf8)) == .unsupportedVersion)
        #expect(refusal(Array("RFB 003.008\n".utf8) + [2]) == .unsupportedSecurity(2))
        #expect(refusal(Self.handshake + [2, 0, 0x01, 0x01]) == .tooLong(messageType: 2, length: 257))
        #expect(refusal(Self.handshake + [248, 0, 0, 0, 0, 0, 0, 0, 65]) == .tooLong(messageType: 248, length: 65))
        #expect(refusal(Self.handshake + Array(Self.keyDown.prefix(5))) == .truncated)
        #expect(refusal(Self.handshake + Self.viewing) == nil)
        // RFB 3.3: the server picks the security type, and the client goes on with ClientInit.
        #expect(refusal(Array("RFB 003.003\n".utf8) + [1] + Self.updateRequest) == nil)
    }

    @Test("thousands of tiny messages are passed one by one, with nothing kept between them")
    func manyTinyMessages() throws {
        var filter = RFBClientStreamFilter()
        var passed = try filter.filter(Self.handshake)
        for _ in 0..<5_000 {
            passed += try filter.filter(Self.updateRequest)
            passed += try filter.filter(Self.pointer)
        }
        #expect(passed.count == Self.handshake.count + 5_000 * Self.updateRequest.count)
        #expect(filter.droppedInputMessages == 5_000)
        try filter.finish()
    }
}
