import Testing

@testable import ORAServer

/// The waits that must end early have an hour's limit: if one returns at all, something other than the limit ended
/// it (the suite's time limit catches one that does not), however busy the machine is.
@Suite("Waking the deadline loop", .timeLimit(.minutes(1)))
struct WakeupTests {
    @Test("a signal ends the wait; without one the wait lasts its limit")
    func signal() async {
        let wakeup = Wakeup()
        async let waited: Void = wakeup.wait(atMost: .seconds(3600))
        try? await Task.sleep(for: .milliseconds(50))
        wakeup.signal()
        await waited
        let timed = await ContinuousClock().measure { await wakeup.wait(atMost: .milliseconds(100)) }
        #expect(timed >= .milliseconds(100))
    }

    @Test("signals given while nobody waits are kept as one: the next wait ends at once, the one after waits again")
    func kept() async {
        let wakeup = Wakeup()
        wakeup.signal()
        wakeup.signal()
        await wakeup.wait(atMost: .seconds(3600))
        let timed = await ContinuousClock().measure { await wakeup.wait(atMost: .milliseconds(100)) }
        #expect(timed >= .milliseconds(100))
    }

    @Test("many waits in a row, each ended by its limit, keep waiting (no wait ends early after the first)")
    func repeated() async {
        let wakeup = Wakeup()
        let elapsed = await ContinuousClock().measure {
            for _ in 0..<5 { await wakeup.wait(atMost: .milliseconds(40)) }
        }
        #expect(elapsed >= .milliseconds(200))
    }

    @Test("a cancelled wait ends")
    func cancelled() async {
        let wakeup = Wakeup()
        let task = Task { await wakeup.wait(atMost: .seconds(3600)) }
        try? await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await task.value
    }
}
