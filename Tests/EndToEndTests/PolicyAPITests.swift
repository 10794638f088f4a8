import Foundation
import ORAClient
import ORATestSupport
import Testing

/// Policy versions through the real servers: apply with the CLI, read and explain over HTTP, and a second replica
/// switching to each new version through PostgreSQL notifications.
@Suite("Policy apply, history, rollback and explain")
struct PolicyAPITests {
    static let roles = """
        roles:
          administrators: ["cn=RA Admins,ou=Groups,dc=corp,dc=example"]
        """

    /// The active version a server reports, waiting (boundedly) for it to become `expected`.
    private func activeVersion(_ server: RunningServer, token: String, expected: Int64) async throws -> Int64? {
        var version: Int64?
        for _ in 0..<200 {
            let answer = try await HTTP.get(server.base + "/api/v1/policy", token: token)
            version = answer.json(Schemas.PolicyDocument.self)?.activation?.version
            if version == expected { return version }
            try await Task.sleep(for: .milliseconds(50))
        }
        return version
    }

    @Test("apply on one replica, the other switches; rollback too; conflicts and invalid sets change nothing")
    func replicas() async throws {
        let first = try await RunningServer(extra: Self.roles)
        let second = try await RunningServer(sharing: first, extra: Self.roles)
        let admin = try await first.token("peter.schmidt")
        let home = try TemporaryDirectory()
        let environment = ["ORA_CONFIG_DIR": home.path, "ORA_SERVER": first.base]
        let ora = SourceTree.binary("ora")
        let login = await ChildProcess.runAsync(
            ora, arguments: ["login", "--user", "peter.schmidt", "--password-stdin"], environment: environment,
            standardInput: "ora-demo\n")
        #expect(login.status == 0)

        let applied = await ChildProcess.runAsync(
            ora, arguments: ["policy", "apply", SourceTree.root + "/Policies", "--comment", "initial set", "--yes"],
            environment: environment)
        #expect(applied.status == 0, "\(applied.standardError)")
        #expect(applied.standardOutput.contains("applied as version 1"))
        #expect(applied.standardOutput.contains("+ never-servers"))
        #expect(try await activeVersion(second, token: admin, expected: 1) == 1)

        // The second replica decides with the new version.
        let explain = try await HTTP.post(
            second.base + "/api/v1/policy/explain",
            json:
                #"{"operator": "hannah.fischer", "machine": "WS-0101", "ticket": "INC0012345", "at": "2026-11-23T09:00:00Z"}"#,
            token: admin)
        #expect(
            explain.json(Schemas.PolicyExplanation.self)?.explanation == #"allowed (view) by "tier1-view-workstations""#
        )
        #expect(explain.json(Schemas.PolicyExplanation.self)?.policyVersion == 1)

        // A change: version 2, then back to 1.
        let changed = try TemporaryDirectory()
        let original = try String(contentsOfFile: SourceTree.root + "/Policies/helpdesk.yaml", encoding: .utf8)
        try changed.write(
            "helpdesk.yaml", original.replacingOccurrences(of: "max_duration: 30m", with: "max_duration: 20m"))
        let reapplied = await ChildProcess.runAsync(
            ora, arguments: ["policy", "apply", changed.path, "--yes"], environment: environment)
        #expect(reapplied.standardOutput.contains("applied as version 2"), "\(reapplied.standardError)")
        #expect(reapplied.standardOutput.contains("~ helpdesk-view-kiosks"))
        #expect(try await activeVersion(second, token: admin, expected: 2) == 2)
        let rollback = await ChildProcess.runAsync(
            ora, arguments: ["policy", "rollback", "1"], environment: environment)
        #expect(rollback.status == 0)
        #expect(try await activeVersion(second, token: admin, expected: 1) == 1)
        let history = try await HTTP.get(second.base + "/api/v1/policy/versions", token: admin)
        #expect(try history.decode([Schemas.PolicyActivation].self).map(\.action) == [.rollback, .apply, .apply])

        // A stale base version is a conflict; an invalid set is refused with every mistake; nothing changes.
        let stale = try await HTTP.send(
            "PUT", first.base + "/api/v1/policy",
            body: #"{"files": [{"name": "a.yaml", "content": "policies: []"}], "based_on": 2}"#, token: admin)
        #expect(stale.status == 409)
        let invalid = try await HTTP.send(
            "PUT", first.base + "/api/v1/policy",
            body: #"{"files": [{"name": "a.yaml", "content": "policies:\n  - name: x\n    allow: all\n"}]}"#,
            token: admin)
        #expect(invalid.status == 422)
        #expect(invalid.refusal?.errors?.count == 3)
        #expect(try await activeVersion(first, token: admin, expected: 1) == 1)
        #expect(try await first.sql("SELECT count(*) FROM policy_versions") == "2")

        // Only administrators apply; people without a role do not even read.
        let helper = try await first.token("hannah.fischer")
        #expect(try await HTTP.get(first.base + "/api/v1/policy", token: helper).status == 403)
        let forbidden = try await HTTP.send(
            "PUT", first.base + "/api/v1/policy", body: #"{"files": []}"#, token: helper)
        #expect(forbidden.status == 403)
    }

    @Test("the policy commands read, explain and refuse as an administrator expects")
    func commandLine() async throws {
        let server = try await RunningServer(extra: Self.roles)
        let home = try TemporaryDirectory()
        let environment = ["ORA_CONFIG_DIR": home.path, "ORA_SERVER": server.base]
        let ora = SourceTree.binary("ora")
        func run(_ arguments: String...) async -> ChildProcess.Result {
            await ChildProcess.runAsync(ora, arguments: arguments, environment: environment)
        }
        let login = await ChildProcess.runAsync(
            ora, arguments: ["login", "--user", "peter.schmidt", "--password-stdin"], environment: environment,
            standardInput: "ora-demo\n")
        #expect(login.status == 0)

        let empty = await run("policy", "show")
        #expect(empty.standardOutput == "no policy has been applied: every offer is denied\n")
        let before = await run("policy", "diff", SourceTree.root + "/Policies")
        #expect(before.standardOutput.contains("against active version (none):"))
        #expect(before.standardOutput.contains("+ tier1-view-workstations"))
        #expect(await run("policy", "apply", SourceTree.root + "/Policies", "--yes").status == 0)
        let after = await run("policy", "diff", SourceTree.root + "/Policies")
        #expect(after.standardOutput == "against active version 1:\n  no changes\n")

        // A typo in a group and in an OU: valid YAML, but the directory has neither; check and apply say so, with
        // what was meant, and nothing changes unless the administrator says the entries come later.
        let typos = try TemporaryDirectory()
        let original = try String(contentsOfFile: SourceTree.root + "/Policies/helpdesk.yaml", encoding: .utf8)
        try typos.write(
            "helpdesk.yaml",
            original.replacingOccurrences(
                of: "groups: [\"cn=Helpdesk Tier 2,ou=Groups", with: "groups: [\"cn=Helpdesk Tier2,ou=Groups"
            ).replacingOccurrences(of: "- \"ou=Laptops,ou=Computers", with: "- \"ou=Laptop,ou=Computers"))
        let offline = await run("policy", "check", typos.path)
        #expect(offline.status == 0, "\(offline.standardError)")
        let looked = await run("policy", "check", typos.path, "--directory")
        #expect(looked.status == 1)
        let lines = looked.standardError.split(separator: "\n").map(String.init)
        #expect(
            lines.contains {
                $0.hasPrefix(typos.path + "/helpdesk.yaml:")
                    && $0.hasSuffix(
                        "policies[1].helpers.groups[0]: the group cn=Helpdesk Tier2,ou=Groups,dc=corp,dc=example is not "
                            + "in the directory; did you mean \"cn=Helpdesk Tier 2,ou=Groups,dc=corp,dc=example\"?")
            }, "\(looked.standardError)")
        #expect(
            lines.filter {
                $0.contains(
                    ": the OU ou=Laptop,ou=Computers,dc=corp,dc=example is not in the directory; did you mean "
                        + "\"ou=Laptops,ou=Computers,dc=corp,dc=example\"?")
            }.count == 2, "\(looked.standardError)")
        #expect(lines.last == "ora: error: 3 entries named in \(typos.path) are not in the directory")
        let good = await run("policy", "check", SourceTree.root + "/Policies", "--directory")
        #expect(good.status == 0, "\(good.standardError)")
        #expect(good.standardOutput.contains("directory entries they name exist"), "\(good.standardOutput)")
        let refused = await run("policy", "apply", typos.path, "--yes")
        #expect(refused.status == 2)
        #expect(refused.standardError.contains("is not in the directory; did you mean"), "\(refused.standardError)")
        #expect(
            refused.standardError.hasSuffix(
                "ora: error: 3 entries named in \(typos.path) are not in the directory; nothing was applied "
                    + "(--allow-unknown for entries created later)\n"), "\(refused.standardError)")
        // The server refuses the set itself too, whoever sends it.
        var files: [[String: String]] = []
        for name in ["helpdesk.yaml"] {
            files.append([
                "name": name, "content": try String(contentsOfFile: typos.path + "/" + name, encoding: .utf8),
            ])
        }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["files": files]), as: UTF8.self)
        let direct = try await HTTP.send(
            "PUT", server.base + "/api/v1/policy", body: body, token: try await server.token("peter.schmidt"))
        #expect(direct.status == 422 && direct.refusal?.error == "unknown_directory_entries", "\(direct.body)")
        #expect(direct.refusal?.errors?.count == 3)
        #expect(await run("policy", "history").standardOutput.split(separator: "\n").count == 1)
        let unknownAllowed = await run("policy", "apply", typos.path, "--allow-unknown", "--yes")
        #expect(unknownAllowed.status == 0, "\(unknownAllowed.standardError)")
        // What putting the good files back would do: the groups and OUs fixed, each field, and who gains access.
        let back = await run("policy", "diff", SourceTree.root + "/Policies")
        #expect(back.standardOutput.contains("  ~ tier1-view-workstations\n"), "\(back.standardOutput)")
        #expect(
            back.standardOutput.contains(
                "      targets.ous: − ou=Laptop,ou=Computers,dc=corp,dc=example; + ou=Laptops,ou=Computers,dc=corp,dc=example"
            ), "\(back.standardOutput)")
        #expect(back.standardOutput.contains("enrolled machines"), "\(back.standardOutput)")
        // Not on a terminal, apply does not ask: it needs --yes.
        let unasked = await run("policy", "apply", SourceTree.root + "/Policies")
        #expect(unasked.status == 64)
        #expect(unasked.standardError.contains("pass --yes to apply without asking"), "\(unasked.standardError)")
        #expect(await run("policy", "apply", SourceTree.root + "/Policies", "--yes").status == 0)

        let show = await run("policy", "show")
        #expect(show.standardOutput.hasPrefix("version 3 (apply by uid=peter.schmidt,ou=People,dc=corp,dc=example"))
        #expect(show.standardOutput.contains("deny          never-servers  (helpdesk.yaml:"))
        let history = await run("policy", "history")
        #expect(history.standardOutput.split(separator: "\n").count == 3)
        #expect(history.standardOutput.contains("version 1  apply  uid=peter.schmidt"))

        let allowed = await run(
            "policy", "explain", "--operator", "hannah.fischer", "--machine", "WS-0101", "--ticket", "INC0012345",
            "--at", "2026-11-23T09:00:00Z")
        #expect(allowed.status == 0)
        #expect(allowed.standardOutput == "allowed (view) by \"tier1-view-workstations\"\n")
        let denied = await run("policy", "explain", "--operator", "lena.wolf", "--machine", "SRV-DC01")
        #expect(denied.status == 1)
        #expect(denied.standardOutput == "denied by \"never-servers\"\n")

        // Answering an invitation: each policy's invitation rules apply.
        let invited = await run(
            "policy", "explain", "--operator", "hannah.fischer", "--machine", "WS-0101", "--ticket", "INC0012345",
            "--at", "2026-11-23T09:00:00Z", "--invitation", "--lifetime", "2h")
        #expect(invited.status == 0, "\(invited.standardError)")
        #expect(invited.standardOutput == "allowed (view) by \"tier1-view-workstations\"\n")
        let withoutPassword = await run(
            "policy", "explain", "--operator", "hannah.fischer", "--machine", "WS-0101", "--ticket", "INC0012345",
            "--at", "2026-11-23T09:00:00Z", "--invitation", "--without-password")
        #expect(withoutPassword.status == 1)
        #expect(
            withoutPassword.standardOutput
                == "denied: \"tier1-view-workstations\" answers only invitations protected by a password\n")
        let tooLong = await run(
            "policy", "explain", "--operator", "hannah.fischer", "--machine", "WS-0101", "--ticket", "INC0012345",
            "--at", "2026-11-23T09:00:00Z", "--invitation", "--lifetime", "2d", "--json")
        #expect(tooLong.status == 1)
        #expect(
            tooLong.standardOutput.contains(
                #""explanation":"denied: the invitation is valid for 2d; \"tier1-view-workstations\" answers invitations valid for at most 10h""#
            ), "\(tooLong.standardOutput)")
        let kiosk = await run(
            "policy", "explain", "--operator", "hannah.fischer", "--machine", "KIOSK-LOBBY1", "--invitation")
        #expect(kiosk.standardOutput == "denied: \"helpdesk-view-kiosks\" answers no invitations, only offers\n")
        let loose = await run("policy", "explain", "--operator", "x", "--machine", "y", "--lifetime", "2h")
        #expect(loose.status == 64)
        #expect(loose.standardError.contains("--lifetime and --without-password go with --invitation"))

        let badMode = await run("policy", "explain", "--operator", "x", "--machine", "y", "--mode", "full")
        #expect(badMode.status == 64)
        #expect(badMode.standardError.contains("--mode is view or control"))
        let badTime = await run("policy", "explain", "--operator", "x", "--machine", "y", "--at", "tomorrow")
        #expect(badTime.status == 64)
        #expect(badTime.standardError.contains("--at must be ISO 8601"))
        let unknown = await run("policy", "rollback", "99")
        #expect(unknown.status == 1)
        #expect(unknown.standardError == "ora: error: there is no policy version 99\n")
        // Back to the version that is active: nothing changes, nothing is recorded.
        let same = await run("policy", "rollback", "3")
        #expect(same.status == 0, "\(same.standardError)")
        #expect(same.standardOutput == "version 3 is already active; nothing changed\n")
        #expect(await run("policy", "history").standardOutput.split(separator: "\n").count == 3)
        let historyJSON = await run("policy", "history", "--json")
        #expect(historyJSON.standardOutput.hasPrefix("[{"), "\(historyJSON.standardOutput)")
        // People read local time with its zone; programs get ISO 8601 in UTC.
        let activations =
            try JSONSerialization.jsonObject(with: Data(historyJSON.standardOutput.utf8)) as? [[String: Any]]
        let recorded = try #require(activations?.last?["activated_at"] as? String)
        #expect(recorded.hasSuffix("Z"), "\(recorded)")
        let kolkata = await ChildProcess.runAsync(
            ora, arguments: ["policy", "history"], environment: environment.merging(["TZ": "Asia/Kolkata"]) { $1 })
        let firstLine = kolkata.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        #expect(
            firstLine.wholeMatch(of: /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+05:30  version 1  apply  .*/) != nil,
            "\(firstLine)")
        let utc = await ChildProcess.runAsync(
            ora, arguments: ["policy", "history"], environment: environment.merging(["TZ": "UTC"]) { $1 })
        #expect(utc.standardOutput.split(separator: "\n").last?.contains(" UTC  version 1  apply  ") == true)

        // Second-line support controls every computer but the kiosks under them, and the workstations only one
        // level deep: the directory knows the entries, diff names the fields, and explain the exclusion.
        let scoped = try TemporaryDirectory()
        try scoped.write(
            "helpdesk.yaml",
            original.replacingOccurrences(
                of: """
                          ous:
                            - "ou=Workstations,ou=Computers,dc=corp,dc=example"
                            - "ou=Laptops,ou=Computers,dc=corp,dc=example"
                        allow: control
                    """,
                with: """
                          ous:
                            - {dn: "ou=Workstations,ou=Computers,dc=corp,dc=example", scope: one}
                            - "ou=Computers,dc=corp,dc=example"
                          except:
                            ous: ["ou=Kiosks,ou=Computers,dc=corp,dc=example"]
                            machines: [LT-0043]
                        allow: control
                    """))
        let checked = await run("policy", "check", scoped.path, "--directory")
        #expect(checked.status == 0, "\(checked.standardError)")
        let scopedDiff = await run("policy", "diff", scoped.path)
        #expect(
            scopedDiff.standardOutput.contains(
                "      targets.ous: − ou=Laptops,ou=Computers,dc=corp,dc=example; − ou=Workstations,ou=Computers,"
                    + "dc=corp,dc=example; + ou=Computers,dc=corp,dc=example; + ou=Workstations,ou=Computers,"
                    + "dc=corp,dc=example (one level)\n"), "\(scopedDiff.standardOutput)")
        #expect(
            scopedDiff.standardOutput.contains(
                "      targets.except.ous: + ou=Kiosks,ou=Computers,dc=corp,dc=example\n"
                    + "      targets.except.machines: + lt-0043\n"), "\(scopedDiff.standardOutput)")
        #expect(await run("policy", "apply", scoped.path, "--yes").status == 0)
        // Two stored versions compare as files do, in words and as JSON; --to is the active version by default.
        let versions = await run("policy", "diff", "--from", "3")
        #expect(versions.status == 0, "\(versions.standardError)")
        #expect(
            versions.standardOutput.hasPrefix("from version 3 to version 4:\n  ~ tier2-control-workstations\n"),
            "\(versions.standardOutput)")
        #expect(versions.standardOutput.contains("      targets.except.machines: + lt-0043\n"))
        let versionsJSON = await run("policy", "diff", "--from", "3", "--to", "4", "--json")
        let versionDocument =
            try JSONSerialization.jsonObject(with: Data(versionsJSON.standardOutput.utf8)) as? [String: Any]
        let changedPolicies = versionDocument?["changed"] as? [[String: Any]]
        #expect(changedPolicies?.map { $0["name"] as? String } == ["tier2-control-workstations"])
        #expect(
            (changedPolicies?.first?["fields"] as? [[String: Any]])?.compactMap { $0["field"] as? String } == [
                "targets.ous", "targets.except.ous", "targets.except.machines",
            ], "\(versionsJSON.standardOutput)")
        let filesJSON = await run("policy", "diff", SourceTree.root + "/Policies", "--json")
        let filesDocument =
            try JSONSerialization.jsonObject(with: Data(filesJSON.standardOutput.utf8)) as? [String: Any]
        #expect(filesDocument?["against"] as? Int == 4, "\(filesJSON.standardOutput)")
        #expect(
            (filesDocument?["changed"] as? [[String: Any]])?.first?["name"] as? String == "tier2-control-workstations")
        #expect(filesDocument?["impact"] is [Any] && filesDocument?["machines"] is Int)
        let mixed = await run("policy", "diff", scoped.path, "--from", "1")
        #expect(mixed.status == 64)
        #expect(mixed.standardError.contains("compare a directory with the active version, or --from one version"))
        let neither = await run("policy", "diff")
        #expect(neither.status == 64)
        #expect(neither.standardError.contains("name a directory of policy files, or --from a stored version"))
        func explain(_ machine: String, _ mode: String) async -> ChildProcess.Result {
            await run(
                "policy", "explain", "--operator", "lena.wolf", "--machine", machine, "--mode", mode, "--ticket",
                "INC0012345")
        }
        #expect(
            await explain("WS-0101", "control").standardOutput
                == "allowed (control) by \"tier2-control-workstations\"\n")
        #expect(
            await explain("LT-0042", "control").standardOutput
                == "allowed (control) by \"tier2-control-workstations\"\n")
        let kioskControl = await explain("KIOSK-LOBBY1", "control")
        #expect(kioskControl.status == 1)
        #expect(
            kioskControl.standardOutput
                == "denied: \"helpdesk-view-kiosks\" allows view only; \"tier2-control-workstations\" leaves this "
                + "machine out (except ous: ou=Kiosks,ou=Computers,dc=corp,dc=example)\n")
        let laptop = await explain("LT-0043", "view")
        #expect(laptop.status == 1)
        #expect(
            laptop.standardOutput
                == "denied: \"tier2-control-workstations\" leaves this machine out (except machines: lt-0043)\n")
        let laptopJSON = await run(
            "policy", "explain", "--operator", "lena.wolf", "--machine", "LT-0043", "--ticket", "INC0012345",
            "--json")
        let document = try JSONSerialization.jsonObject(with: Data(laptopJSON.standardOutput.utf8)) as? [String: Any]
        #expect(
            document?["exclusions"] as? [[String: String]] == [
                ["policy": "tier2-control-workstations", "entry": "machines: lt-0043"]
            ], "\(laptopJSON.standardOutput)")
    }

    @Test("the policy API refuses bad requests, unknown names and missing roles with their own answers")
    func refusals() async throws {
        let server = try await RunningServer(
            extra: Self.roles + "\n  auditors: [\"cn=Security,ou=Groups,dc=corp,dc=example\"]")
        let admin = try await server.token("peter.schmidt")
        let auditor = try await server.token("sara.klein")
        let helper = try await server.token("hannah.fischer")
        let policy = server.base + "/api/v1/policy"
        let files =
            #"[{"name": "a.yaml", "content": "policies:\n  - {name: all, helpers: {any: true}, targets: {any: true}, allow: view}\n"}]"#

        // Malformed bodies.
        for (method, url) in [("PUT", policy), ("POST", policy + "/rollback"), ("POST", policy + "/explain")] {
            let answer = try await HTTP.send(method, url, body: #"{"unexpected": true}"#, token: admin)
            #expect(answer.status == 400, "\(method) \(url)")
            #expect(answer.refusal?.error == "invalid_request")
        }

        // A change reviewed against "nothing active" after something was applied is a conflict.
        let first = try await HTTP.send(
            "PUT", policy, body: #"{"files": \#(files), "based_on_nothing": true}"#, token: admin)
        #expect(first.status == 200, "\(first.body)")
        let stale = try await HTTP.send(
            "PUT", policy, body: #"{"files": \#(files), "based_on_nothing": true}"#, token: admin)
        #expect(stale.status == 409)
        #expect(stale.refusal?.error == "conflict")

        let unknownVersion = try await HTTP.post(policy + "/rollback", json: #"{"version": 42}"#, token: admin)
        #expect(unknownVersion.status == 404)
        #expect(unknownVersion.refusal?.error == "unknown_version")

        let unknownOperator = try await HTTP.post(
            policy + "/explain", json: #"{"operator": "nobody.here", "machine": "WS-0101"}"#, token: auditor)
        #expect(unknownOperator.status == 404)
        #expect(unknownOperator.refusal?.error == "unknown_operator")
        let unknownMachine = try await HTTP.post(
            policy + "/explain", json: #"{"operator": "lena.wolf", "machine": "PC-NOWHERE"}"#, token: auditor)
        #expect(unknownMachine.status == 404)
        #expect(unknownMachine.refusal?.error == "unknown_machine")

        // Auditors read and explain but do not change; people without a role do neither.
        #expect(try await HTTP.get(policy, token: auditor).status == 200)
        #expect(try await HTTP.get(policy + "/versions", token: auditor).status == 200)
        let auditorApply = try await HTTP.send("PUT", policy, body: #"{"files": \#(files)}"#, token: auditor)
        #expect(auditorApply.status == 403)
        #expect(auditorApply.refusal?.message == "only an administrator may apply policy")
        #expect(try await HTTP.post(policy + "/rollback", json: #"{"version": 1}"#, token: auditor).status == 403)
        #expect(try await HTTP.get(policy + "/versions", token: helper).status == 403)
        #expect(
            try await HTTP.post(
                policy + "/explain", json: #"{"operator": "lena.wolf", "machine": "WS-0101"}"#, token: helper
            )
            .status == 403)

        // The directory down: an explanation cannot be given.
        try await server.directory.stop()
        let down = try await HTTP.post(
            policy + "/explain", json: #"{"operator": "lena.wolf", "machine": "WS-0101"}"#, token: admin)
        #expect(down.status == 503)
        #expect(down.refusal?.error == "directory_unavailable")
        #expect(try await server.sql("SELECT count(*) FROM policy_versions") == "1")
    }
}
