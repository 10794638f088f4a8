/// Reads the viewer→desktop half of an RFB stream (RFC 6143) and decides, message by message, what reaches the
/// desktop: everything that only asks to see the screen passes; keyboard, pointer and clipboard input pass only while
/// the person at the machine has granted control. Bytes are passed on as they arrive (nothing is held back beyond
/// the header of a message; the short input messages are their own header), so the relay adds no delay of its own.
///
/// It remembers which keys and pointer buttons the input it passed holds down, so that whoever relays can release
/// them when control ends (`releaseHeldInput()`): otherwise a key the helper held at that moment (Ctrl, a mouse
/// button) would stay pressed on the machine.
///
/// The stream is refused, not guessed at, when it cannot be parsed: an unknown message type (its length cannot be
/// known), a length above `RFBLimits`, or a security type other than None (ora's tickets authenticate the viewer;
/// the desktop's VNC server runs without a password, reachable only through the agent).
public struct RFBClientStreamFilter: Sendable {
    /// Whether keyboard, pointer and clipboard input may reach the desktop now. Changed as control is granted and
    /// taken back; it applies from the next message on.
    public var controlGranted: Bool
    /// How many input messages were dropped because control was not granted.
    public private(set) var droppedInputMessages = 0

    private enum Phase: Sendable {
        /// The 12-byte ProtocolVersion.
        case version
        /// The one byte naming the security type (RFB 3.7 and 3.8).
        case securityType
        /// The one-byte ClientInit.
        case clientInit
        /// Client-to-server messages.
        case messages
    }

    private var phase = Phase.version
    /// The bytes of the current message's header read so far.
    private var header: [UInt8] = []
    /// What is left of the current message once its header is known.
    private var remaining = 0
    /// Whether the rest of the current message is passed on.
    private var passing = true
    /// The keysyms of the key events passed that are down now.
    private var heldKeys: Set<UInt32> = []
    /// The extended (QEMU) key events passed that are down now: keycode to keysym.
    private var heldExtendedKeys: [UInt32: UInt32] = [:]
    /// The button mask of the last pointer event passed, and where it was.
    private var buttons: UInt8 = 0
    private var pointer: (x: UInt16, y: UInt16) = (0, 0)

    /// Whether the input passed holds any key or button down.
    public var holdsInput: Bool { !heldKeys.isEmpty || !heldExtendedKeys.isEmpty || buttons != 0 }

    /// Whether the stream is between two messages, where a message of the relay's own may be put in.
    public var isAtMessageBoundary: Bool { phase == .messages && header.isEmpty && remaining == 0 }

    /// Creates a filter for a new stream.
    public init(controlGranted: Bool = false) {
        self.controlGranted = controlGranted
    }

    /// The bytes of `chunk` that may reach the desktop, in order.
    /// - Throws: `RFBStreamError` when the stream cannot be parsed or breaks a limit; the relay closes it then.
    public mutating func filter(_ chunk: some Collection<UInt8>) throws(RFBStreamError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(chunk.count)
        var index = chunk.startIndex
        while index != chunk.endIndex {
            if remaining > 0 {
                // The body of a message whose fate is decided: passed or skipped without being stored.
                let end = chunk.index(index, offsetBy: remaining, limitedBy: chunk.endIndex) ?? chunk.endIndex
                if passing { output.append(contentsOf: chunk[index..<end]) }
                remaining -= chunk.distance(from: index, to: end)
                index = end
                continue
            }
            header.append(chunk[index])
            index = chunk.index(after: index)
            if let decided = try decide() {
                if decided.passes {
                    if phase == .messages { remember(header) }
                    output.append(contentsOf: header)
                } else {
                    droppedInputMessages += 1
                }
                passing = decided.passes
                remaining = decided.body
                header.removeAll(keepingCapacity: true)
            }
        }
        return output
    }

    /// The messages that release every key and button the input passed holds down (key-up events, extended key-up
    /// events, and a pointer event with no button at the last position), in that order; empty when nothing is held.
    /// What they release is no longer held. Put them in only at a message boundary (`isAtMessageBoundary`).
    public mutating func releaseHeldInput() -> [UInt8] {
        var messages: [UInt8] = []
        for key in heldKeys.sorted() {
            messages += [4, 0, 0, 0] + Self.bigEndian(key)
        }
        for (code, key) in heldExtendedKeys.sorted(by: { $0.key < $1.key }) {
            messages += [255, 0, 0, 0] + Self.bigEndian(key) + Self.bigEndian(code)
        }
        if buttons != 0 {
            messages += [
                5, 0, UInt8(pointer.x >> 8), UInt8(pointer.x & 0xff), UInt8(pointer.y >> 8), UInt8(pointer.y & 0xff),
            ]
        }
        heldKeys.removeAll()
        heldExtendedKeys.removeAll()
        buttons = 0
        return messages
    }

    /// Notes what a whole input message that passed holds down or lets go.
    private mutating func remember(_ message: [UInt8]) {
        switch message.first {
        case 4 where message.count == 8:
            let key = Self.word(message, at: 4)
            if message[1] != 0 { heldKeys.insert(key) } else { heldKeys.remove(key) }
        case 5 where message.count == 6:
            buttons = message[1]
            pointer = (UInt16(message[2]) << 8 | UInt16(message[3]), UInt16(message[4]) << 8 | UInt16(message[5]))
        case 255 where message.count == 12:
            let code = Self.word(message, at: 8)
            if message[2] != 0 || message[3] != 0 {
                heldExtendedKeys[code] = Self.word(message, at: 4)
            } else {
                heldExtendedKeys[code] = nil
            }
        default:
            break
        }
    }

    /// The Extended Clipboard's "caps" action bit.
    private static let extendedClipboardCapabilities: UInt32 = 0x0100_0000

    private static func word(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// Whether the stream ended between messages.
    /// - Throws: `RFBStreamError.truncated` when it ended inside one.
    public func finish() throws(RFBStreamError) {
        guard header.isEmpty, remaining == 0 else { throw .truncated }
    }

    /// Once the header read so far decides the message: whether it passes and how many bytes follow the header.
    private mutating func decide() throws(RFBStreamError) -> (passes: Bool, body: Int)? {
        switch phase {
        case .version:
            guard header.count == 12 else { return nil }
            let text = String(decoding: header, as: UTF8.self)
            switch text {
            case "RFB 003.003\n":
                // RFB 3.3: the server picks the security type; None means the client goes straight to ClientInit.
                phase = .clientInit
            case "RFB 003.007\n", "RFB 003.008\n":
                phase = .securityType
            default:
                throw .unsupportedVersion
            }
            return (true, 0)
        case .securityType:
            guard header[0] == 1 else { throw .unsupportedSecurity(header[0]) }
            phase = .clientInit
            return (true, 0)
        case .clientInit:
            phase = .messages
            return (true, 0)
        case .messages:
            return try decideMessage()
        }
    }

    private func decideMessage() throws(RFBStreamError) -> (passes: Bool, body: Int)? {
        let input = controlGranted
        switch header[0] {
        case 0:  // SetPixelFormat: 3 padding bytes and a 16-byte pixel format.
            return (true, 19)
        case 2:  // SetEncodings: padding, a 16-bit count, then 4 bytes per encoding.
            guard header.count == 4 else { return nil }
            let count = Int(header[2]) << 8 | Int(header[3])
            guard count <= RFBLimits.maximumEncodingCount else { throw .tooLong(messageType: 2, length: count) }
            return (true, count * 4)
        case 3:  // FramebufferUpdateRequest.
            return (true, 9)
        case 4:  // KeyEvent: read whole, so that what it holds down is known.
            guard header.count == 8 else { return nil }
            return (input, 0)
        case 5:  // PointerEvent: read whole, likewise.
            guard header.count == 6 else { return nil }
            return (input, 0)
        case 6:  // ClientCutText: 3 padding bytes, a 32-bit length, then the text.
            guard header.count >= 8 else { return nil }
            let raw = UInt32(header[4]) << 24 | UInt32(header[5]) << 16 | UInt32(header[6]) << 8 | UInt32(header[7])
            // The Extended Clipboard extension (which noVNC speaks) sends a negative length: its payload, 4 bytes
            // of flags and then the data, is -length bytes long.
            let signed = Int32(bitPattern: raw)
            let length = signed < 0 ? -Int(signed) : Int(signed)
            guard signed >= 0 || length >= 4 else { throw .invalidLength(messageType: 6, length: Int(raw)) }
            guard length <= RFBLimits.maximumClientCutTextLength else {
                throw .tooLong(messageType: 6, length: Int(raw))
            }
            guard signed < 0 else { return (input, length) }
            // Extended: the flags decide. A viewer answers the desktop's capabilities with its own (the caps action
            // bit, then one 4-byte size limit per format it names): that carries no clipboard content and is part
            // of seeing the screen, so it passes and is not counted as input. Anything else moves a clipboard.
            guard header.count == 12 else { return nil }
            let flags = Self.word(header, at: 8)
            let isCapabilities =
                flags & Self.extendedClipboardCapabilities != 0 && length == 4 + 4 * (flags & 0xFFFF).nonzeroBitCount
            return (input || isCapabilities, length - 4)
        case 150:  // EnableContinuousUpdates: a flag and a rectangle.
            return (true, 9)
        case 248:  // ClientFence: 3 padding bytes, 32-bit flags, an 8-bit length (at most 64), the payload.
            guard header.count == 9 else { return nil }
            let length = Int(header[8])
            guard length <= 64 else { throw .tooLong(messageType: 248, length: length) }
            return (true, length)
        case 250:  // xvp: shutdown, reboot or reset of the machine; only with control.
            return (input, 3)
        case 251:  // SetDesktopSize: changes the desktop's resolution; only with control.
            guard header.count == 8 else { return nil }
            let screens = Int(header[6])
            return (input, screens * 16)
        case 255:  // QEMU client message: subtype 0 is the extended key event, 12 bytes in all, read whole.
            guard header.count >= 2 else { return nil }
            guard header[1] == 0 else { throw .unknownMessage(255) }
            guard header.count == 12 else { return nil }
            return (input, 0)
        default:
            throw .unknownMessage(header[0])
        }
    }
}

/// Why the relay closed an RFB stream.
public enum RFBStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The viewer asked for an RFB version other than 3.3, 3.7 or 3.8.
    case unsupportedVersion
    /// The viewer chose a security type other than None.
    case unsupportedSecurity(UInt8)
    /// A message type the relay does not know: its length cannot be known, so nothing after it can be read.
    case unknownMessage(UInt8)
    /// A length above the relay's limit.
    case tooLong(messageType: UInt8, length: Int)
    /// A length that no valid message has.
    case invalidLength(messageType: UInt8, length: Int)
    /// The stream ended inside a message.
    case truncated

    public var description: String {
        switch self {
        case .unsupportedVersion: "the viewer asked for an RFB version other than 3.3, 3.7 or 3.8"
        case .unsupportedSecurity(let type): "the viewer chose security type \(type); only None is relayed"
        case .unknownMessage(let type): "the viewer sent message type \(type), which the relay does not know"
        case .tooLong(let type, let length): "message type \(type) announced \(length), above the relay's limit"
        case .invalidLength(let type, let length):
            "message type \(type) announced \(length), which is not a valid length"
        case .truncated: "the stream ended inside a message"
        }
    }
}
