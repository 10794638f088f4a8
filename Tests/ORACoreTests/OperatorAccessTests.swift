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
