import Foundation
import ORACore
import Testing

@Suite("Operator tokens")
struct OperatorTokenTests {
    @Test("tokens are 256 random bits, URL-safe, recognisable, and differ every time")
    func generate() {
        let tokens = (0..<1000).map { _ in OperatorToken.generate() }
        #expect(Set(tokens).count == 1000)
        for token in tokens {
            #expect(token.isWellFormed)
            #expect(token.value.hasPrefix("ora_op_"))
            #expect(token.value.count == "ora_op_".count + 43)
        }
    }

    @Test("the stored form is the SHA-256 of the token, not the token")
    func hash() {
        let token = OperatorToken(value: "ora_op_" + String(repeating: "A", count: 43))
        #expect(token.hash.count == 32)
        #expect(token.hash == OperatorToken(value: token.value).hash)
        #expect(token.hash != OperatorToken(value: "ora_op_" + String(repeating: "B", count: 43)).hash)
        // SHA-256("abc"), to pin the algorithm.
        #expect(
            Hex.encode(OperatorToken(value: "abc").hash)
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test(
        "malformed tokens are recognised before any lookup",
        arguments: [
            "", "ora_op_", "ora_op_short", "Bearer x", "ora_ag_" + String(repeating: "A", count: 43),
            "ora_op_" + String(repeating: "A", count: 42) + "=", "ora_op_" + String(repeating: "A", count: 44),
        ])
    func malformed(value: String) {
        #expect(!OperatorToken(value: value).isWellFormed)
    }
}

@Suite("Failed-login limits")
struct LoginRateLimiterTests {
    let start = ContinuousClock.now
    let limits = LoginRateLimiter.Limits(failuresPerAccount: 3, failuresPerAddress: 5, window: .seconds(60))

    /// Begins an attempt and returns it when allowed.
    private func begin(
        _ limiter: inout LoginRateLimiter, _ account: String, from address: String, after seconds: Int = 0
    ) -> LoginRateLimiter.Attempt? {
        if case .allowed(let attempt) = limiter.begin(
            account: account, address: address, now: start + .seconds(seconds))
        {
            return attempt
        }
        return nil
    }

    @Test("an account is limited after its failures, until the oldest leaves the window")
    func perAccount() {
        var limiter = LoginRateLimiter(limits: limits)
        for second in 0..<3 {
            #expect(begin(&limiter, "lena", from: "10.0.0.\(second)", after: second) != nil)  // and fails
        }
        #expect(
            limiter.begin(account: "LENA", address: "10.9.9.9", now: start + .seconds(10))
                == .limited(retryAfter: .seconds(50)))
        #expect(begin(&limiter, "omar", from: "10.9.9.9", after: 10) != nil)
        #expect(begin(&limiter, "lena", from: "10.9.9.9", after: 60) != nil)
    }

    @Test("an address is limited across accounts")
    func perAddress() {
        var limiter = LoginRateLimiter(limits: limits)
        for index in 0..<5 { _ = begin(&limiter, "user\(index)", from: "192.0.2.7") }
        #expect(
            limiter.begin(account: "someone-new", address: "192.0.2.7", now: start + .seconds(1))
                == .limited(retryAfter: .seconds(59)))
        #expect(begin(&limiter, "someone-new", from: "192.0.2.8", after: 1) != nil)
    }

    @Test("attempts still in progress count, so concurrent guesses cannot all pass")
    func concurrentAttempts() {
        var limiter = LoginRateLimiter(limits: limits)
        let inFlight = (0..<3).compactMap { _ in begin(&limiter, "lena", from: "192.0.2.1") }
        #expect(inFlight.count == 3)
        #expect(begin(&limiter, "lena", from: "192.0.2.2") == nil)
    }

    @Test("a successful login clears the account's failures but not the address's")
    func success() throws {
        var limiter = LoginRateLimiter(limits: limits)
        for _ in 0..<2 { _ = begin(&limiter, "lena", from: "192.0.2.1") }
        let attempt = try #require(begin(&limiter, "Lena", from: "192.0.2.1"))
        limiter.succeeded(attempt)
        #expect(begin(&limiter, "lena", from: "192.0.2.2") != nil)
        // The address keeps its two failures; three more reach its limit of five.
        for _ in 0..<2 { _ = begin(&limiter, "x", from: "192.0.2.1") }
        #expect(begin(&limiter, "y", from: "192.0.2.1") != nil)
        #expect(begin(&limiter, "z", from: "192.0.2.1") == nil)
    }

    @Test("the person the directory finds is limited under whatever name they were typed as")
    func perPerson() throws {
        var limiter = LoginRateLimiter(limits: limits)
        let dn = "uid=lena.wolf,ou=people,dc=corp,dc=example"
        for name in ["lena.wolf", "LENA.WOLF ", "lena.wolf\u{A0}"] {
            var attempt = try #require(begin(&limiter, name, from: "192.0.2.1"))
            #expect(limiter.admit(person: dn, to: &attempt, now: start) == nil)  // and the password was wrong
        }
        // A fourth spelling passes the name check, but not the person's.
        var fourth = try #require(begin(&limiter, "uid-alias", from: "192.0.2.1"))
        #expect(limiter.admit(person: dn, to: &fourth, now: start + .seconds(1)) == .seconds(59))
        #expect(limiter.rememberedKeys.people == 1)
        // A success clears the person's failures.
        limiter = LoginRateLimiter(limits: limits)
        var failed = try #require(begin(&limiter, "a", from: "192.0.2.1"))
        _ = limiter.admit(person: dn, to: &failed, now: start)
        var succeeded = try #require(begin(&limiter, "b", from: "192.0.2.1"))
        #expect(limiter.admit(person: dn, to: &succeeded, now: start) == nil)
        limiter.succeeded(succeeded)
        #expect(limiter.rememberedKeys.people == 0)
    }

    @Test("a flood of made-up names costs bounded memory")
    func boundedMemory() {
        var limiter = LoginRateLimiter(
            limits: .init(failuresPerAccount: 3, failuresPerAddress: 1_000_000, window: .seconds(60), mostKeys: 1_000))
        for index in 0..<20_000 {
            _ = begin(&limiter, "made-up-\(index)", from: "192.0.2.\(index % 200)", after: index / 1_000)
        }
        #expect(limiter.rememberedKeys.accounts <= 1_000)
        #expect(limiter.rememberedKeys.addresses <= 200)
        // The most recent failures are the ones kept.
        for _ in 0..<2 { _ = begin(&limiter, "made-up-19999", from: "192.0.2.250", after: 20) }
        #expect(begin(&limiter, "made-up-19999", from: "192.0.2.250", after: 20) == nil)
    }

    @Test("an attempt the directory could not decide counts against nobody")
    func undecided() {
        var limiter = LoginRateLimiter(limits: limits)
        for _ in 0..<10 {
            if let attempt = begin(&limiter, "lena", from: "192.0.2.1") { limiter.undecided(attempt) }
        }
        #expect(begin(&limiter, "lena", from: "192.0.2.1") != nil)
    }
}

@Suite("Roles from groups")
struct RoleAssignmentTests {
    @Test("roles follow group membership, compared as DNs")
    func roles() throws {
        let assignments = RoleAssignments(
            administrators: [try DistinguishedName("cn=RA Admins,ou=Groups,dc=corp,dc=example")],
            auditors: [try DistinguishedName("cn=Security,ou=Groups,dc=corp,dc=example")])
        #expect(
            assignments.roles(forGroups: [try DistinguishedName("CN=ra admins,OU=Groups,DC=Corp,DC=Example")]) == [
                .administrator
            ])
        #expect(
            assignments.roles(forGroups: [
                try DistinguishedName("cn=Security,ou=Groups,dc=corp,dc=example"),
                try DistinguishedName("cn=RA Admins,ou=Groups,dc=corp,dc=example"),
            ]) == [.administrator, .auditor])
        #expect(
            assignments.roles(forGroups: [try DistinguishedName("cn=Helpdesk,ou=Groups,dc=corp,dc=example")]).isEmpty)
    }
}

@Suite("User names at login")
struct LoginNameTests {
    @Test(
        "every spelling the directory takes for one account becomes one name",
        arguments: [
            "lena.wolf", " lena.wolf", "lena.wolf\u{A0}", "\u{3000}lena.wolf\u{2003}", "ｌｅｎａ.wolf", "LENA.WOLF",
            "Ｌｅｎａ．ｗｏｌｆ",
        ])
    func variants(typed: String) throws {
        let name = try LoginName(typed: typed)
        #expect(name.key == "lena.wolf")
    }

    @Test("inner white space is one space, as the directory compares it")
    func innerSpace() throws {
        #expect(try LoginName(typed: "Lena  \u{A0}Wolf").text == "Lena Wolf")
    }

    @Test(
        "names that can be nobody's are refused before anything is asked",
        arguments: [
            "", "   ", "\u{A0}", String(repeating: "a", count: 257), String(repeating: "x", count: 20_000),
            "lena\u{0}wolf", "lena\r\nwolf", "lena.wolf\n", "\tlena.wolf", "lena\u{1B}[31m", "\u{202E}flow.anel",
            "lena\u{200B}.wolf",
            "lena\u{2066}.wolf",
        ])
    func refused(typed: String) {
        #expect(throws: LoginNameError()) { try LoginName(typed: typed) }
    }

    @Test("the error says what a name must be")
    func message() {
        #expect(
            LoginNameError().description
                == "the user name must be 1 to 256 characters, without control or invisible formatting characters")
    }
}

@Suite("Refusals recorded one by one, and the rest counted")
struct RefusalSamplerTests {
    let start = ContinuousClock.now

    @Test("at most so many a minute per source; the next recorded one carries the count")
    func sampling() {
        var sampler = RefusalSampler(perMinute: 3)
        let first = (0..<10).map { sampler.sample(from: "192.0.2.1", now: start + .seconds($0)) }
        #expect(
            first == [.record(suppressedBefore: 0)] + Array(repeating: .record(suppressedBefore: 0), count: 2)
                + Array(repeating: .suppress, count: 7))
        #expect(sampler.sample(from: "192.0.2.2", now: start + .seconds(10)) == .record(suppressedBefore: 0))
        #expect(sampler.sample(from: "192.0.2.1", now: start + .seconds(61)) == .record(suppressedBefore: 7))
    }

    @Test("memory is bounded; counts of forgotten sources are still reported")
    func bounded() {
        var sampler = RefusalSampler(perMinute: 1, mostSources: 100)
        var reported = 0
        for index in 0..<1_000 {
            for _ in 0..<2 {  // the second is suppressed
                if case .record(let carried) = sampler.sample(from: "s\(index)", now: start) { reported += carried }
            }
        }
        // Forgotten windows' counts went out with later refusals; at most the last hundred sources' are still held.
        #expect(reported >= 900 && reported <= 1_000, "\(reported)")
    }
}

@Suite("Login link codes")
struct LoginLinkCodeTests {
    @Test("a code is the prefix and 256 random bits; only its hash is kept; an operator token is not one")
    func shape() {
        let code = LoginLinkCode.generate()
        #expect(code.value.hasPrefix("ora_link_") && code.isWellFormed)
        #expect(code.hash.count == 32 && code.hash != LoginLinkCode.generate().hash)
        #expect(!LoginLinkCode(value: OperatorToken.generate().value).isWellFormed)
        #expect(!LoginLinkCode(value: code.value + "x").isWellFormed)
    }

    @Test(
        "a link opens a console page and nothing else",
        arguments: [
            ("/", true), ("/machines", true), ("/sessions", true),
            ("/sessions/5b0fa3c4-1d2e-4f60-8a9b-0c1d2e3f4a5b", true),
            ("", false), ("/sessions/x", false), ("//evil.example/", false), ("https://evil.example/", false),
            ("/machines?x=1", false), ("/api/v1/logout", false),
            ("/sessions/5b0fa3c4-1d2e-4f60-8a9b-0c1d2e3f4a5b/x", false),
        ])
    func pages(path: String, allowed: Bool) {
        #expect(LoginLinkCode.isConsolePage(path) == allowed)
    }
}
