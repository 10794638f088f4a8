import NIOCore
import ORARelay

// Fuzzes the opening line of a connection to the screen relay's port (`ORA-SCREEN/1 viewer|agent TICKET [carried]`),
// read as `ScreenOpeningHandler` reads it: each read is appended to what is pending, `ScreenStream.takeLine` takes
// a line once a newline has come, and `ScreenStream.parseRequest` reads the leg, the ticket and the mark of a
// carried leg from it. The handler itself needs a channel pipeline; these two functions are all it does with the
// bytes.
//
// Input: one byte seeding how the bytes are cut into reads, then the bytes the connection sends.
//
// Checked for every input, besides not crashing, not hanging and not running out of memory:
// * what is pending never grows past the longest line plus one read: a peer that sends no newline is cut off;
// * a line, once taken, is the text before the first newline, and the bytes after it in the same read are kept;
// * a line longer than the longest accepted is refused, whether or not its newline came in the same read;
// * the reads change nothing: a line taken from reads is the line taken from the whole, and a line refused from
//   reads is refused from the whole;
// * a request that parses is one the client side could have written (`ScreenStream.request`), its ticket is 64
//   hex digits, and the line is within the longest line accepted.

/// Read sizes from 1 to 64 bytes, drawn from a seed (a linear congruential generator: cheap and repeatable).
private struct ReadSizes {
    var state: UInt64

    mutating func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(state >> 58) + 1
    }
}

/// What reading the opening line from a connection came to.
private enum Opening: Equatable {
    /// A line, and the bytes after its newline that arrived in the same read.
    case line(String, rest: [UInt8])
    /// More than the longest line arrived without a newline.
    case tooLong
    /// The connection ended before a whole line.
    case unfinished
}

/// Reads the opening line from `bytes` arriving in reads cut where `cut` says.
private func open(_ bytes: ArraySlice<UInt8>, cut: () -> Int) -> Opening {
    var pending = ByteBuffer()
    var index = bytes.startIndex
    while index < bytes.endIndex {
        let end = min(bytes.endIndex, index + cut())
        pending.writeBytes(bytes[index..<end])
        let read = end - index
        index = end
        guard pending.readableBytes <= ScreenStream.maximumLineLength + read else {
            fatalError("pending grew past a line and one read")
        }
        let line: String?
        do {
            line = try ScreenStream.takeLine(from: &pending)
        } catch {
            let lineLength = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")).map {
                $0 - pending.readerIndex
            }
            guard (lineLength ?? pending.readableBytes) > ScreenStream.maximumLineLength else {
                fatalError("a line within the limit was refused as too long")
            }
            return .tooLong
        }
        guard let line else {
            guard !pending.readableBytesView.contains(UInt8(ascii: "\n")) else {
                fatalError("a newline had come but no line was taken")
            }
            continue
        }
        let rest = Array(pending.readableBytesView)
        guard rest == Array(bytes[bytes.index(end, offsetBy: -rest.count)..<end]) else {
            fatalError("bytes after the line lost")
        }
        return .line(line, rest: rest)
    }
    return .unfinished
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let connection = bytes[1...]

    let whole = open(connection) { connection.count }
    var sizes = ReadSizes(state: UInt64(bytes[0]))
    let reads = open(connection) { sizes.next() }
    switch (reads, whole) {
    case (.line(let line, _), .line(let wholeLine, _)) where line == wholeLine: break
    case (.tooLong, .tooLong), (.unfinished, .unfinished): break
    default: fatalError("the reads gave \(reads), the whole stream \(whole)")
    }
    if let newline = connection.firstIndex(of: UInt8(ascii: "\n")) {
        let length = newline - connection.startIndex
        let expected = String(decoding: connection[..<newline], as: UTF8.self)
        guard
            length > ScreenStream.maximumLineLength
                ? whole == .tooLong : whole == .line(expected, rest: Array(connection[(newline + 1)...]))
        else { fatalError("the whole line misread") }
    }

    for case .line(let line, _) in [whole, reads] {
        guard let (leg, ticket, carried) = ScreenStream.parseRequest(line) else { continue }
        guard ScreenStream.request(leg: leg, ticket: ticket, carried: carried) == line + "\n" else {
            fatalError("the request does not round-trip")
        }
        guard ticket.utf8.count == 64 && ticket.utf8.allSatisfy(isHexDigit) else {
            fatalError("the ticket \(ticket) is not 64 hex digits")
        }
        guard line.utf8.count <= ScreenStream.maximumLineLength else {
            fatalError("a request longer than the longest line")
        }
    }
    return 0
}

/// Whether `byte` is an ASCII hex digit, of either case: what `Hex.encode` writes, and nothing else.
private func isHexDigit(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
        UInt8(ascii: "A")...UInt8(ascii: "F"):
        true
    default: false
    }
}
