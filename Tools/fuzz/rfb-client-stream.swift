import ORARelay

// Fuzzes `RFBClientStreamFilter`, which reads the bytes a viewer sends towards the desktop.
//
// Input: one byte of settings, one byte seeding how the stream is cut into pieces, then the stream itself.
// Settings bit 0 grants control from the start; bit 1 also runs the stream with control granted and taken back
// between pieces, as the relay does when the person at the machine changes their mind mid-stream.
//
// Checked for every input, besides not crashing, not hanging and not running out of memory:
// * the pieces change nothing: whole, one byte at a time, or cut as the seed says, the same bytes pass, the same
//   messages are dropped, the same error closes the stream, and the same input is left held;
// * nothing is added: what passes is never longer than what came, and with control granted it is all of it
//   (but for a last message whose header has not all come);
// * view-only never passes input: the filter then holds no key or button down;
// * what passes is itself a stream that passes whole, with nothing more to drop;
// * the messages that release held input release all of it, and the filter reads them as a well-formed stream.

/// What one run of the filter over a stream came to.
private struct Outcome: Equatable {
    /// The bytes passed, in order; only compared when the stream was not refused, since a refused piece returns
    /// nothing of what it passed before the refusal.
    var passed: [UInt8] = []
    var refusal: RFBStreamError?
    var dropped = 0
    var holdsInput = false
    var isAtMessageBoundary = false
    var endsInsideMessage = false
    var released: [UInt8] = []

    static func == (lhs: Outcome, rhs: Outcome) -> Bool {
        guard lhs.refusal == nil, rhs.refusal == nil else { return lhs.refusal == rhs.refusal }
        return lhs.passed == rhs.passed && lhs.dropped == rhs.dropped && lhs.holdsInput == rhs.holdsInput
            && lhs.isAtMessageBoundary == rhs.isAtMessageBoundary && lhs.endsInsideMessage == rhs.endsInsideMessage
            && lhs.released == rhs.released
    }
}

/// Piece sizes from 1 to 32 bytes, drawn from a seed (a linear congruential generator: cheap and repeatable).
private struct PieceSizes {
    var state: UInt64

    mutating func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(state >> 59) + 1
    }
}

/// Runs a fresh filter over `stream`, cut where `cut` says, and checks what holds for any single run.
/// - Parameter toggle: whether control flips between pieces, starting from `control`.
private func run(
    _ stream: ArraySlice<UInt8>, control: Bool, toggle: Bool = false, cut: () -> Int
) -> Outcome {
    var filter = RFBClientStreamFilter(controlGranted: control)
    var outcome = Outcome()
    var index = stream.startIndex
    while index < stream.endIndex {
        let end = min(stream.endIndex, index + cut())
        do {
            outcome.passed += try filter.filter(stream[index..<end])
        } catch {
            outcome.refusal = error
            return outcome
        }
        index = end
        if toggle { filter.controlGranted.toggle() }
        guard control || toggle || !filter.holdsInput else { fatalError("view-only let a key or button through") }
    }
    guard outcome.passed.count <= stream.count else { fatalError("the filter passed more bytes than it was given") }
    // With control granted everything passes, but for the start of a message whose header has not all come.
    if control, !toggle {
        guard outcome.passed.elementsEqual(stream.prefix(outcome.passed.count)),
            stream.count - outcome.passed.count < 12
        else { fatalError("with control granted, bytes went missing") }
    }
    outcome.dropped = filter.droppedInputMessages
    outcome.holdsInput = filter.holdsInput
    outcome.isAtMessageBoundary = filter.isAtMessageBoundary
    outcome.endsInsideMessage = (try? filter.finish()) == nil
    if filter.isAtMessageBoundary {
        // The release messages, fed to a copy that lets input through, must be read whole and leave nothing held.
        var copy = filter
        copy.controlGranted = true
        let release = filter.releaseHeldInput()
        let passed: [UInt8]
        do {
            passed = try copy.filter(release)
        } catch {
            fatalError("the filter refused its own release messages: \(error)")
        }
        guard passed == release else { fatalError("the release messages did not pass whole") }
        guard !copy.holdsInput else { fatalError("the release messages left input held") }
        guard copy.isAtMessageBoundary else { fatalError("the release messages ended inside a message") }
        outcome.released = release
    } else {
        outcome.released = filter.releaseHeldInput()
    }
    guard !filter.holdsInput && filter.releaseHeldInput().isEmpty else { fatalError("input still held after release") }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let control = bytes[0] & 1 != 0
    let stream = bytes[2...]

    let whole = run(stream, control: control) { stream.count }
    let single = run(stream, control: control) { 1 }
    guard single == whole else { fatalError("one byte at a time differs from the whole stream: \(single) vs \(whole)") }
    var sizes = PieceSizes(state: UInt64(bytes[1]))
    let pieces = run(stream, control: control) { sizes.next() }
    guard pieces == whole else { fatalError("pieces differ from the whole stream: \(pieces) vs \(whole)") }

    if whole.refusal == nil, !control {
        // What passes while view-only is a stream in which nothing is left to drop.
        let again = run(whole.passed[...], control: false) { whole.passed.count }
        guard again.refusal == nil else { fatalError("what passed is refused when read again: \(again)") }
        guard again.passed == whole.passed else { fatalError("what passed does not pass again unchanged") }
        guard again.dropped == 0 else { fatalError("what passed still held input to drop") }
    }
    if bytes[0] & 2 != 0 {
        var flips = PieceSizes(state: UInt64(bytes[1]) ^ 0xA5)
        _ = run(stream, control: control, toggle: true) { flips.next() }
    }
    return 0
}
