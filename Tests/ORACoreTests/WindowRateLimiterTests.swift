import Foundation
import ORACore
import Testing

@Suite("Rate per key within a window")
struct WindowRateLimiterTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("a machine takes as many offers as allowed within the window; the next waits until the oldest leaves it")
    func limit() {
        var limiter = WindowRateLimiter(perWindow: 3)
        #expect(limiter.admit("ws-0101", at: start) == .allowed)
        #expect(limiter.admit("ws-0101", at: start + 10) == .allowed)
        #expect(limiter.admit("ws-0101", at: start + 20) == .allowed)
        #expect(limiter.admit("ws-0101", at: start + 30) == .limited(recent: 3, retryAfter: .seconds(30)))
        #expect(limiter.admit("ws-0202", at: start + 30) == .allowed, "another machine counts apart")
        #expect(limiter.admit("ws-0101", at: start + 59.5) == .limited(recent: 3, retryAfter: .milliseconds(500)))
        #expect(limiter.admit("ws-0101", at: start + 60) == .allowed, "the first offer has left the window")
        #expect(limiter.admit("ws-0101", at: start + 61) == .limited(recent: 3, retryAfter: .seconds(9)))
    }

    @Test("a refused offer is not counted: waiting out the window is enough")
    func refusalsDoNotCount() {
        var limiter = WindowRateLimiter(perWindow: 1, window: .seconds(10))
        #expect(limiter.admit("ws-0101", at: start) == .allowed)
        for second in 1..<10 {
            #expect(limiter.admit("ws-0101", at: start + Double(second)) != .allowed)
        }
        #expect(limiter.admit("ws-0101", at: start + 10) == .allowed)
    }

    @Test("machines whose offers are all out of the window are forgotten, so memory follows recent offers")
    func forgets() {
        var limiter = WindowRateLimiter(perWindow: 3)
        for index in 0..<5_000 { _ = limiter.admit("ws-\(index)", at: start) }
        #expect(limiter.keysRemembered == 5_000)
        let later = start + 61
        for _ in 0..<WindowRateLimiter.sweepEvery { _ = limiter.admit("ws-new", at: later) }
        #expect(limiter.keysRemembered == 1)
        #expect(limiter.admit("ws-0", at: later) == .allowed, "a forgotten machine starts afresh")
    }

    @Test("at least one offer is always allowed")
    func atLeastOne() {
        var limiter = WindowRateLimiter(perWindow: 0)
        #expect(limiter.perWindow == 1)
        #expect(limiter.admit("ws-0101", at: start) == .allowed)
    }
}
