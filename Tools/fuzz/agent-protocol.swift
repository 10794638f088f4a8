import ORACore

// Fuzzes the decoders of the agent protocol: `AgentProtocol.decodeAgentMessage`, which the server runs on every
// WebSocket frame an agent sends, and `AgentProtocol.decodeServerMessage`, which the agent runs on every frame the
// server sends. The input is one frame.
//
// Checked for every input, besides not crashing, not hanging and not running out of memory:
// * a frame that decodes is a message that, encoded again, decodes to the same message;
// * an agent's hello that decodes carries only reportable text (no control characters, not too long);
// * a refusal is short: its description names what was wrong and never repeats the frame.

/// The longest description a refusal may have: the longest fixed sentence plus a key path of known keys.
private let longestRefusal = 200

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let frame = UnsafeBufferPointer(start: data, count: size)

    do {
        let message = try AgentProtocol.decodeAgentMessage(frame)
        if case .hello(let machine, let version, let system) = message {
            guard [machine, version, system].allSatisfy(AgentProtocol.isReportable) else {
                fatalError("a hello with unreportable text")
            }
        }
        let encoded = AgentProtocol.encode(message)
        if encoded.count <= AgentProtocol.maximumFrameSize {
            do {
                let again = try AgentProtocol.decodeAgentMessage(encoded)
                guard again == message else {
                    fatalError("the agent's message changed on its way back: \(message) vs \(again)")
                }
            } catch {
                fatalError("the agent's message \(message) does not decode once encoded: \(error)")
            }
        }
    } catch {
        guard error.description.utf8.count <= longestRefusal else { fatalError("a long refusal: \(error.description)") }
    }

    do {
        let message = try AgentProtocol.decodeServerMessage(frame)
        let encoded = AgentProtocol.encode(message)
        if encoded.count <= AgentProtocol.maximumFrameSize {
            do {
                let again = try AgentProtocol.decodeServerMessage(encoded)
                guard again == message else {
                    fatalError("the server's message changed on its way back: \(message) vs \(again)")
                }
            } catch {
                fatalError("the server's message \(message) does not decode once encoded: \(error)")
            }
        }
    } catch {
        guard error.description.utf8.count <= longestRefusal else { fatalError("a long refusal: \(error.description)") }
    }
    return 0
}
