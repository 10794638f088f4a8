import Foundation
import ORAClient
import ORATestSupport
import Testing

/// Operators logging in through the real server, against the real directory and database.
@Suite("Operator login, identity and logout")
struct OperatorLoginTests {
    static let configuration = """
        roles:
          administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
          auditors: ["CN=Security,OU=Groups,DC=Corp,DC=Example"]
        login_limits: {failures_per_account: 3, failures_per_address: 50, window: 5m}
        """

    @Test("log in, see groups and roles, log out; the token stops working")
    func loginIdentityLogout() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        let answer = try await server.login("peter.schmidt", password: "ora-demo")
        #expect(answer.status == 200, "\(answer.body)")
        let token = try #require(answer.json(Schemas.LoginResult.self)?.token)
        #expect(token.hasPrefix("ora_op_"))

        let me = try await HTTP.get(server.base + "/api/v1/me", token: token)
        #expect(me.status == 200)
        #expect(me.json(Schemas.Identity.self)?.roles.map(\.rawValue) == ["administrator"])
        #expect(me.json(Schemas.Identity.self)?.groups.contains("cn=IT Staff,ou=Groups,dc=corp,dc=example") == true)
        #expect(me.json(Schemas.Identity.self)?._operator.displayName == "Peter Schmidt")

        let auditor = try await server.login("sara.klein", password: "ora-demo")
        let auditorToken = try #require(auditor.json(Schemas.LoginResult.self)?.token)
        #expect(
            try await HTTP.get(server.base + "/api/v1/me", token: auditorToken).json(Schemas.Identity.self)?.roles
                == [.auditor])
        let helper = try await server.login("hannah.fischer", password: "ora-demo")
        let helperToken = try #require(helper.json(Schemas.LoginResult.self)?.token)
        let helperIdentity = try await HTTP.get(server.base + "/api/v1/me", token: helperToken).decode(
            Schemas.Identity.self)
        #expect(helperIdentity.roles == [])
        #expect(helperIdentity.groups.contains("cn=Helpdesk,ou=Groups,dc=corp,dc=example"))

        #expect(try await HTTP.post(server.base + "/api/v1/logout", token: token).status == 204)
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: token).status == 401)
        #expect(try await HTTP.post(server.base + "/api/v1/logout", token: token).status == 401)
        // Other sessions are untouched.
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: auditorToken).status == 200)

        // The database holds hashes, never tokens; every attempt is recorded.
        #expect(
            try await server.sql(
                "SELECT count(*) FROM operator_sessions WHERE token_hash = sha256(convert_to('\(token)', 'UTF8'))")
                == "1")
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'operator.login' AND outcome = 'success'")
                == "3")
        #expect(try await server.sql("SELECT count(*) FROM audit_events WHERE event = 'operator.logout'") == "1")
    }

    @Test("wrong password, unknown user, empty password and hostile names all get the same 401")
    func refusals() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        var bodies: Set<String> = []
        for (user, password) in [
            ("lena.wolf", "wrong"), ("nobody.here", "ora-demo"), ("omar.haddad", ""), ("*", "ora-demo"),
            ("hannah.fisch*", "ora-demo"), ("*)(uid=*", "ora-demo"),
        ] {
            let answer = try await server.login(user, password: password)
            #expect(answer.status == 401, "\(user)")
            bodies.insert(answer.body)
        }
        #expect(bodies.count == 1, "the answers must not tell the cases apart: \(bodies)")
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'operator.login_failed' AND details->>'reason' = 'invalid_credentials'"
            ) == "6")
        #expect(try await server.sql("SELECT count(*) FROM operator_sessions") == "0")

        let malformed = try await HTTP.post(server.base + "/api/v1/login", json: #"{"user": "lena.wolf"}"#)
        #expect(malformed.status == 400)
        #expect(malformed.refusal?.error == "invalid_request")
    }

    @Test("tokens: missing, malformed, unknown and expired are refused")
    func tokens() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        #expect(try await HTTP.get(server.base + "/api/v1/me").status == 401)
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: "not-a-token").status == 401)
        #expect(
            try await HTTP.get(server.base + "/api/v1/me", token: "ora_op_" + String(repeating: "A", count: 43)).status
                == 401)
        let token = try #require(
            try await server.login("lena.wolf", password: "ora-demo").json(Schemas.LoginResult.self)?.token)
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: token).status == 200)
        // Expired by hand in the database: refused once the server hears of it (at once, when it ends it itself).
        _ = try await server.sql("UPDATE operator_sessions SET expires_at = now() - interval '1 second'")
        let expired = try await eventually {
            try await HTTP.get(server.base + "/api/v1/me", token: token)
        } until: {
            $0.status == 401
        }
        #expect(expired.status == 401)
        #expect(expired.refusal?.error == "invalid_token")
    }

    @Test("repeated failures for one account are limited with Retry-After, even with the right password")
    func rateLimit() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        for _ in 0..<3 { #expect(try await server.login("tom.berger", password: "guess").status == 401) }
        let limited = try await server.login("tom.berger", password: "ora-demo")
        #expect(limited.status == 429)
        #expect(limited.refusal?.error == "too_many_attempts")
        #expect(Int(limited.retryAfter ?? "") ?? 0 > 0)
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'operator.login_failed' AND details->>'reason' = 'rate_limited'"
            ) == "1")
        // Other accounts are not affected.
        #expect(try await server.login("lena.wolf", password: "ora-demo").status == 200)
    }

    @Test("200 logins with 20 KB names beside 30 real ones: every real login succeeds, every poisoned one gets 400")
    func poisonedNames() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        let people = ["hannah.fischer", "tom.berger", "lena.wolf", "omar.haddad", "sara.klein", "peter.schmidt"]
        let poison = String(repeating: "\u{00e9}x", count: 10_000)
        let answers = try await withThrowingTaskGroup(of: (Bool, UInt, String).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let answer = try await server.login(poison + "\(index)", password: "guess")
                    return (false, answer.status, answer.refusal?.message ?? answer.body)
                }
            }
            for index in 0..<30 {
                group.addTask {
                    let answer = try await server.login(people[index % people.count])
                    return (true, answer.status, answer.body)
                }
            }
            var all: [(Bool, UInt, String)] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        let real = answers.filter { $0.0 }
        #expect(real.count == 30)
        #expect(real.allSatisfy { $0.1 == 200 }, "\(real.filter { $0.1 != 200 })")
        let poisoned = answers.filter { !$0.0 }
        #expect(poisoned.allSatisfy { $0.1 == 400 })
        #expect(
            Set(poisoned.map { $0.2 }) == [
                "the user name must be 1 to 256 characters, without control or invisible formatting characters"
            ])
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'operator.login' AND outcome = 'success'")
                == "30")
        #expect(try await server.sql("SELECT max(octet_length(actor_id)) < 300 FROM audit_events") == "t")
        let overlong = try await server.login("lena.wolf", password: String(repeating: "p", count: 1025))
        #expect(overlong.status == 400)
        #expect(overlong.refusal?.message == "the password must be at most 1024 bytes")
    }

    @Test(
        "every spelling of a name counts against one account: a locked-out account stays locked under any of them; logins are recorded under the DN and the account's own name"
    )
    func nameVariants() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        // Each of these logs in as lena.wolf.
        for variant in [" lena.wolf", "lena.wolf\u{A0}", "ｌｅｎａ.wolf"] {
            let answer = try await server.login(variant)
            #expect(answer.status == 200, "\(variant.debugDescription): \(answer.body)")
        }
        #expect(
            try await server.sql(
                "SELECT string_agg(DISTINCT actor_id || '|' || actor_name, ',') FROM audit_events WHERE event = 'operator.login'"
            ) == "uid=lena.wolf,ou=People,dc=corp,dc=example|lena.wolf")
        // Three failures under three spellings lock the account (the limit is three) for every spelling.
        for variant in [" lena.wolf", "lena.wolf\u{A0}", "ｌｅｎａ.wolf"] {
            #expect(try await server.login(variant, password: "guess").status == 401)
        }
        for variant in ["lena.wolf", "LENA.WOLF", "ｌｅｎａ．ｗｏｌｆ", "lena.wolf "] {
            let answer = try await server.login(variant)
            #expect(answer.status == 429, "\(variant.debugDescription): \(answer.body)")
        }
        // Failures are recorded under the DN once the directory has found the person.
        #expect(
            try await server.sql(
                """
                SELECT string_agg(DISTINCT actor_id, ',') FROM audit_events
                WHERE event = 'operator.login_failed' AND details->>'reason' = 'invalid_credentials'
                """) == "uid=lena.wolf,ou=People,dc=corp,dc=example")
        // Other accounts are not affected.
        #expect(try await server.login("omar.haddad").status == 200)
    }

    @Test("refusals over the limit are recorded at most 20 a minute per address, and the rest counted")
    func limitedRefusalsAggregated() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        for _ in 0..<3 { #expect(try await server.login("tom.berger", password: "guess").status == 401) }
        let started = ContinuousClock.now
        for _ in 0..<40 { #expect(try await server.login("tom.berger", password: "guess").status == 429) }
        let recorded = try await server.sql(
            "SELECT count(*) FROM audit_events WHERE event = 'operator.login_failed' AND details->>'reason' = 'rate_limited'"
        )
        let elapsed = ContinuousClock.now - started
        if elapsed < .seconds(60) {
            #expect(recorded == "20")
        } else {
            // On a machine so loaded that the 40 refusals took more than a minute, each new minute of the address's
            // (a window of 60 seconds from the first refusal it records) records up to 20 again: never more than 20
            // per window, so at most 20 for each window the run touched.
            let windows = Int((elapsed / .seconds(60)).rounded(.up)) + 1
            #expect((20...min(40, 20 * windows)).contains(Int(recorded) ?? 0), "\(recorded) in \(elapsed)")
        }
    }

    @Test(
        "administrators list live sessions and revoke one or all of an operator's at once; a locked account loses its session at the next check"
    )
    func sessionsRevoked() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        let peter = try await OperatorCLI("peter.schmidt", server: server, ora: SourceTree.binary("ora"))
        let lenaFirst = try await server.token("lena.wolf")
        let lenaSecond = try await server.token("lena.wolf")
        let tom = try await server.token("tom.berger")

        let listed = await peter.run("operators", "sessions", "--operator", "lena.wolf")
        #expect(listed.status == 0, "\(listed.standardError)")
        let lines = listed.standardOutput.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.contains("lena.wolf  Lena Wolf  from 127.0.0.1") }, "\(lines)")
        #expect(!listed.standardOutput.contains("ora_op_"), "tokens are never shown")
        let everyone = await peter.run("operators", "sessions")
        #expect(everyone.standardOutput.split(separator: "\n").count == 4)
        let hannah = try await OperatorCLI("hannah.fischer", server: server, ora: SourceTree.binary("ora"))
        let notAllowed = await hannah.run("operators", "sessions")
        #expect(notAllowed.status == 2)
        #expect(notAllowed.standardError.contains("only an administrator or auditor may list operator sessions"))

        // One of Lena's sessions: it stops working at once; her other one goes on. A reason that is one character to
        // count but megabytes to store is refused first, and revokes nothing.
        let newest = String(lines[0].prefix(36))
        let peterToken = try await server.token("peter.schmidt")
        let heavy = try await HTTP.post(
            server.base + "/api/v1/operators/sessions/\(newest)/revoke",
            json: #"{"reason": "a\#(String(repeating: "\u{301}", count: 20_000))"}"#, token: peterToken)
        #expect(heavy.status == 400, "\(heavy.body)")
        #expect(heavy.refusal?.error == "invalid_request")
        let malformed = try await HTTP.post(
            server.base + "/api/v1/operators/sessions/lena/revoke", json: "{}", token: peterToken)
        #expect(malformed.status == 400)
        #expect(malformed.refusal?.message == "the session id must be a UUID")
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: lenaSecond).status == 200)
        let revoked = await peter.run("operators", "revoke", newest, "--reason", "INC0012345 laptop stolen")
        #expect(revoked.status == 0, "\(revoked.standardError)")
        #expect(revoked.standardOutput.hasPrefix("revoked \(newest)"))
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: lenaSecond).status == 401)
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: lenaFirst).status == 200)
        let again = await peter.run("operators", "revoke", newest)
        #expect(again.standardError.contains("no live operator session \(newest)"))
        // All of them.
        let all = await peter.run("operators", "revoke", "--operator", "uid=lena.wolf,ou=People,dc=corp,dc=example")
        #expect(all.status == 0, "\(all.standardError)")
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: lenaFirst).status == 401)
        #expect(await hannah.run("operators", "revoke", "--operator", "tom.berger").status == 2)
        #expect(
            try await server.sql(
                """
                SELECT string_agg(concat_ws('|', actor_id, details->>'account', details->>'reason'), ',' ORDER BY sequence)
                FROM audit_events WHERE event = 'operator.session_revoked'
                """)
                == "uid=peter.schmidt,ou=People,dc=corp,dc=example|lena.wolf|INC0012345 laptop stolen,"
                + "uid=peter.schmidt,ou=People,dc=corp,dc=example|lena.wolf|revoked by an administrator")

        // Tom's account is locked in the directory: his session ends at its next check, and he cannot log in again.
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: tom).status == 200)
        try await server.directory.modify(
            "dn: uid=tom.berger,ou=People,dc=corp,dc=example\nchangetype: modify\nadd: pwdAccountLockedTime\n"
                + "pwdAccountLockedTime: 000001010000Z\n")
        _ = try await server.sql("UPDATE operator_sessions SET checked_at = now() - interval '1 hour'")
        let locked = try await eventually {
            try await HTTP.get(server.base + "/api/v1/me", token: tom).status
        } until: {
            $0 == 401
        }
        #expect(locked == 401)
        #expect(try await server.login("tom.berger").status == 401)
        #expect(
            try await server.sql(
                """
                SELECT actor_kind || '|' || (details->>'reason') FROM audit_events
                WHERE event = 'operator.session_revoked' AND details->>'account' = 'tom.berger'
                """) == "system|the account is locked by the password policy since 000001010000Z")
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'operator.login_failed' AND details->>'reason' = 'account_disabled'"
            ) == "1")
        // Peter's session was checked too, and goes on.
        #expect(await peter.run("whoami").status == 0)
    }

    @Test("directory down: login and identity answer 503, and recover when it is back")
    func directoryDown() async throws {
        // No cache, so the outage shows at once rather than after the cache's lifetime.
        let server = try await RunningServer(extra: Self.configuration, directoryExtra: "  cache: {ttl: 0s}")
        let token = try #require(
            try await server.login("lena.wolf", password: "ora-demo").json(Schemas.LoginResult.self)?.token)
        try await server.directory.stop()

        let login = try await server.login("lena.wolf", password: "ora-demo")
        #expect(login.status == 503)
        #expect(login.refusal?.error == "directory_unavailable")
        let me = try await HTTP.get(server.base + "/api/v1/me", token: token)
        #expect(me.status == 503)
        #expect(me.refusal?.error == "directory_unavailable")
        #expect(
            try await server.sql(
                "SELECT count(*) FROM audit_events WHERE event = 'operator.login_failed' AND details->>'reason' = 'directory_unavailable'"
            ) == "1")
        // The failed requests are counted for the alert on directory errors.
        let metrics = try await MetricsScrape(server)
        #expect(metrics["ora_directory_errors_total{operation=\"search\"}"] ?? 0 >= 1, "\(metrics.text)")

        try await server.directory.start()
        #expect(try await HTTP.get(server.base + "/api/v1/me", token: token).status == 200)
        #expect(try await server.login("lena.wolf", password: "ora-demo").status == 200)
    }

    @Test("the ora CLI logs in, shows who you are, and logs out")
    func commandLine() async throws {
        let server = try await RunningServer(extra: Self.configuration)
        let home = try TemporaryDirectory()
        let environment = ["ORA_CONFIG_DIR": home.path + "/ora", "ORA_SERVER": server.base]
        let ora = SourceTree.binary("ora")

        let wrong = await ChildProcess.runAsync(
            ora, arguments: ["login", "--user", "lena.wolf", "--password-stdin"], environment: environment,
            standardInput: "not-it\n")
        #expect(wrong.status == 2)
        #expect(wrong.standardError == "ora: error: invalid user name or password\n")

        let login = await ChildProcess.runAsync(
            ora, arguments: ["login", "--user", "lena.wolf", "--password-stdin"], environment: environment,
            standardInput: "ora-demo\n")
        #expect(login.status == 0, "\(login.standardError)")
        #expect(login.standardOutput.hasPrefix("Logged in to \(server.base) as Lena Wolf (lena.wolf)"))
        let credentials = home.path + "/ora/credentials.json"
        let attributes = try FileManager.default.attributesOfItem(atPath: credentials)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let whoami = await ChildProcess.runAsync(ora, arguments: ["whoami"], environment: environment)
        #expect(whoami.status == 0)
        #expect(whoami.standardOutput.contains("Lena Wolf (lena.wolf)"))
        #expect(whoami.standardOutput.contains("cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example"))
        let json = await ChildProcess.runAsync(ora, arguments: ["whoami", "--json"], environment: environment)
        let identity = try JSONDecoder.oraAPI().decode(Schemas.Identity.self, from: Data(json.standardOutput.utf8))
        #expect(identity._operator.account == "lena.wolf")

        let logout = await ChildProcess.runAsync(ora, arguments: ["logout"], environment: environment)
        #expect(logout.status == 0)
        #expect(!FileManager.default.fileExists(atPath: credentials))
        let after = await ChildProcess.runAsync(ora, arguments: ["whoami"], environment: environment)
        #expect(after.status == 4)
        #expect(after.standardError.contains("not logged in"))
    }
}
