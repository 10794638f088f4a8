import Foundation
import ORACore
import ORAStore
import Synchronization
import Testing

@testable import ORAServer

@Suite("Operators' sessions kept in memory")
struct LoginCacheTests {
    static let start = ContinuousClock.now
    static let lena = OperatorSessionStore.Session(
        id: UUID(),
        person: Operator(
            dn: "uid=lena.wolf,ou=People,dc=corp,dc=example", account: "lena.wolf", displayName: "Lena Wolf", mail: nil),
        sourceAddress: "127.0.0.1", createdAt: Date(), expiresAt: Date() + 3600, checkedAt: Date())
    static let hash: [UInt8] = Array(repeating: 7, count: 32)

    /// A cache that listens, with Lena's session kept at `start`.
    static func keeping() throws -> LoginCache {
        let cache = LoginCache(lifetime: .seconds(2))
        cache.listening(true)
        let generation = try #require(cache.generation)
        cache.keep(lena, for: hash, lookedUpAt: generation, at: start)
        return cache
    }

    @Test("a session looked up is served for its lifetime, then asked for again")
    func lifetime() throws {
        let cache = try Self.keeping()
        #expect(cache.session(for: Self.hash, at: Self.start + .seconds(1)) == Self.lena)
        #expect(cache.session(for: Array(repeating: 8, count: 32), at: Self.start) == nil)
        #expect(cache.session(for: Self.hash, at: Self.start + .seconds(2)) == nil)
        #expect(cache.session(for: Self.hash, at: Self.start) == nil, "dropped once stale")
    }

    @Test("a session announced as changed is forgotten at once; others stay")
    func changed() throws {
        let cache = try Self.keeping()
        cache.changed([UUID()])
        #expect(cache.session(for: Self.hash, at: Self.start) == Self.lena)
        cache.changed([Self.lena.id])
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
    }

    @Test("an announcement that names no session forgets every one, and any lookup under way")
    func unreadableAnnouncement() throws {
        let cache = try Self.keeping()
        let generation = try #require(cache.generation)
        cache.forgetAll()
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
        cache.keep(Self.lena, for: Self.hash, lookedUpAt: generation, at: Self.start)
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
        // Still listening: a lookup from now on is kept again.
        let next = try #require(cache.generation)
        cache.keep(Self.lena, for: Self.hash, lookedUpAt: next, at: Self.start)
        #expect(cache.session(for: Self.hash, at: Self.start) == Self.lena)
    }

    @Test("a lookup that raced with an announcement is not kept")
    func raced() throws {
        let cache = LoginCache()
        cache.listening(true)
        let generation = try #require(cache.generation)
        // Revoked (anywhere) while the database was answering the lookup: what it answered may be stale.
        cache.changed([Self.lena.id])
        cache.keep(Self.lena, for: Self.hash, lookedUpAt: generation, at: Self.start)
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
        // Any announcement counts, whichever session it names: ids are not tracked for lookups under way.
        let next = try #require(cache.generation)
        cache.changed([UUID()])
        cache.keep(Self.lena, for: Self.hash, lookedUpAt: next, at: Self.start)
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
    }

    @Test("a session ended here is forgotten here and by the other replicas before `ended` returns")
    func ended() async throws {
        let cache = try Self.keeping()
        await cache.ended([Self.lena.id])
        #expect(cache.session(for: Self.hash, at: Self.start) == nil, "a lone replica forgets it itself")

        let told = Mutex<[[UUID]]>([])
        let again = try Self.keeping()
        again.reachOthers { ids, wait in
            #expect(wait == .seconds(2), "the others are waited for as long as what they keep is trusted")
            told.withLock { $0.append(ids) }
        }
        await again.ended([Self.lena.id])
        #expect(told.withLock { $0 } == [[Self.lena.id]])
        #expect(again.session(for: Self.hash, at: Self.start) == nil)
        await again.ended([])
        #expect(told.withLock { $0 }.count == 1, "nothing ended, nobody asked")
    }

    @Test("nothing is kept or served unless the replica hears the database's announcements")
    func onlyWhileListening() throws {
        let deaf = LoginCache()
        #expect(deaf.generation == nil)
        deaf.keep(Self.lena, for: Self.hash, lookedUpAt: 0, at: Self.start)
        #expect(deaf.session(for: Self.hash, at: Self.start) == nil)

        // The listening connection breaks: everything is forgotten, and stays so when it is back.
        let cache = try Self.keeping()
        let before = try #require(cache.generation)
        cache.listening(false)
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
        #expect(cache.generation == nil)
        cache.listening(true)
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
        // A lookup from before the break is not kept after it.
        cache.keep(Self.lena, for: Self.hash, lookedUpAt: before, at: Self.start)
        #expect(cache.session(for: Self.hash, at: Self.start) == nil)
    }
}
