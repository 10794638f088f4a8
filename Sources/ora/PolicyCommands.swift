import ArgumentParser
import Foundation
import ORAClient
import ORACore

extension ORACommand {
    struct PolicyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "policy",
            abstract: "Work with policy files.",
            subcommands: [Check.self, Diff.self, Apply.self, Show.self, History.self, Rollback.self, Explain.self]
        )
    }
}

extension ORACommand.PolicyCommand {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a directory of policy files, reporting every mistake (for git hooks and CI).",
            discussion: """
                Offline by default. With --directory, every group, OU and computer group the files name is also \
                looked up in the directory, through the server (logged in as an administrator or auditor): each one \
                that is not there is reported with its position and the names that were probably meant.
                """)

        @Argument(help: ArgumentHelp("The folder holding the policy files (*.yaml, *.yml).", valueName: "folder"))
        var folder: String
        @Flag(name: .customLong("directory"), help: "Also look up the entries the files name in the directory.")
        var lookUp = false
        @OptionGroup var options: ServerOption

        func run() async throws {
            let set = try ORACommand.PolicyCommand.parseLocal(folder, otherwise: "nothing is valid until all are fixed")
            let allow = set.policies.filter { if case .allow = $0.effect { return true } else { return false } }.count
            let files = set.files.count
            let summary =
                "\(folder): \(set.policies.count) policies (\(allow) allow, \(set.policies.count - allow) deny) "
                + "in \(files) file\(files == 1 ? "" : "s") are valid; version \(set.contentHash.prefix(12))"
            guard lookUp else { return print(summary) }
            let request = Components.Schemas.PolicyCheckRequest(
                files: set.files.map { .init(name: $0.name, content: $0.content) })
            let checked = try await authenticatedClient(options).call {
                try await $0.checkPolicy(body: .json(request)).ok.body.json
            }
            for unknown in checked.unknown {
                FileHandle.standardError.write(Data("\(folder)/\(unknown.message)\n".utf8))
            }
            guard checked.unknown.isEmpty else {
                let count = checked.unknown.count
                throw fail(
                    "\(count) entr\(count == 1 ? "y" : "ies") named in \(folder) \(count == 1 ? "is" : "are") not in "
                        + "the directory", code: 1)
            }
            print(summary + "; the \(checked.references) directory entries they name exist")
        }
    }
}

/// Reading a policy directory.
enum PolicyFiles {
    /// The `.yaml` and `.yml` files directly in `directory`, named relative to it, sorted.
    static func read(directory: String) throws -> [PolicySet.File] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw fail("cannot read the policy directory \(directory)", code: 2)
        }
        let policyNames = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        guard !policyNames.isEmpty else { throw fail("\(directory) holds no .yaml or .yml files", code: 2) }
        return try policyNames.map { name in
            guard let content = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else {
                throw fail("cannot read \(directory)/\(name) as UTF-8 text", code: 2)
            }
            return PolicySet.File(name: name, content: content)
        }
    }
}

/// The active policy as the server answers it.
typealias ActivePolicy = Components.Schemas.PolicyDocument

extension ORACommand.PolicyCommand {
    static func fetchActive(_ client: APIClient) async throws -> ActivePolicy {
        try await client.call { try await $0.getPolicy().ok.body.json }
    }

    /// Reads and validates a policy directory; on mistakes, prints each (`DIR/file:line:column: …`) and exits 1
    /// saying what follows from them.
    static func parseLocal(_ directory: String, otherwise consequence: String = "nothing was sent") throws -> PolicySet
    {
        let files = try PolicyFiles.read(directory: directory)
        do {
            return try PolicyParser.parse(files)
        } catch {
            for mistake in error.errors { FileHandle.standardError.write(Data("\(directory)/\(mistake)\n".utf8)) }
            let count = error.errors.count
            throw fail("\(count) mistake\(count == 1 ? "" : "s") in \(directory); \(consequence)", code: 1)
        }
    }

    static func current(_ active: ActivePolicy) -> PolicySet? {
        let files = active.files.map { PolicySet.File(name: $0.name, content: $0.content) }
        return files.isEmpty ? nil : try? PolicyParser.parse(files)
    }

    /// What applying `local` over `active` changes, as `diff` and `apply` print it: each policy added, removed or
    /// changed, each changed field under it, then who gains or loses access on the enrolled machines (`checked`).
    static func report(active: ActivePolicy, local: PolicySet, checked: Components.Schemas.PolicyCheck) -> [String] {
        let current = current(active)
        let diff = PolicyDiff(from: current, to: local)
        guard !diff.isEmpty else { return ["  no changes"] }
        let fields = Dictionary(
            PolicyDiff.fieldChanges(from: current, to: local).map { ($0.policy, $0.changes) },
            uniquingKeysWith: { first, _ in first })
        var lines: [String] = []
        for line in diff.lines {
            lines.append("  " + line)
            let name = String(line.dropFirst(2))
            for change in fields[name] ?? [] { lines.append("      " + change.summary) }
        }
        if checked.impact.isEmpty {
            lines.append("no helper group gains or loses access on the \(checked.machines) enrolled machines")
        } else {
            lines.append("who gains or loses access now, on the \(checked.machines) enrolled machines:")
            lines += checked.impact.map { "  " + $0.summary }
        }
        return lines
    }

    /// The server's check of `local`: the entries the directory lacks (printed as warnings, DIR-relative) and the
    /// impact.
    static func check(
        _ local: PolicySet, folder: String, client: APIClient
    ) async throws -> Components.Schemas.PolicyCheck {
        let request = Components.Schemas.PolicyCheckRequest(
            files: local.files.map { .init(name: $0.name, content: $0.content) })
        let checked = try await client.call { try await $0.checkPolicy(body: .json(request)).ok.body.json }
        for unknown in checked.unknown {
            FileHandle.standardError.write(Data("\(folder)/\(unknown.message)\n".utf8))
        }
        return checked
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what applying a directory of policy files would change — each policy, each field, and "
                + "who gains or loses access — or what changed from one stored version to another.",
            discussion: """
                ora policy diff DIR compares the files with the active version. ora policy diff --from 3 --to 5 \
                compares two stored versions (--to defaults to the active one).
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The directory holding the policy files.") var directory: String?
        @Option(help: "A stored version to compare from, instead of files.") var from: Int64?
        @Option(help: "With --from: the version to compare to (default: the active version).") var to: Int64?
        @Flag(help: "Print the differences as JSON.") var json = false

        func validate() throws {
            if directory != nil, from != nil || to != nil {
                throw ValidationError("compare a directory with the active version, or --from one version --to another")
            }
            if directory == nil, from == nil {
                throw ValidationError("name a directory of policy files, or --from a stored version")
            }
            if to != nil, from == nil { throw ValidationError("--to goes with --from") }
        }

        func run() async throws {
            let client = try authenticatedClient(options)
            guard let directory else { return try await versions(client) }
            let local = try ORACommand.PolicyCommand.parseLocal(directory)
            let active = try await ORACommand.PolicyCommand.fetchActive(client)
            let checked = try await ORACommand.PolicyCommand.check(local, folder: directory, client: client)
            if json {
                let current = ORACommand.PolicyCommand.current(active)
                let diff = PolicyDiff(from: current, to: local)
                let changed = PolicyDiff.fieldChanges(from: current, to: local)
                return try printJSON(
                    FilesDiff(
                        against: active.activation?.version, added: diff.added, removed: diff.removed,
                        changed: diff.changed.map { name in
                            .init(
                                name: name,
                                fields: (changed.first { $0.policy == name }?.changes ?? []).map(FieldChange.init))
                        },
                        rolesChanged: diff.rolesChanged, machines: checked.machines, impact: checked.impact))
            }
            print("against active version \(active.activation.map { String($0.version) } ?? "(none)"):")
            for line in ORACommand.PolicyCommand.report(active: active, local: local, checked: checked) { print(line) }
        }

        /// Two stored versions, as the server compares them.
        private func versions(_ client: APIClient) async throws {
            guard let from else { return }
            var to = to
            if to == nil {
                guard let active = try await ORACommand.PolicyCommand.fetchActive(client).activation?.version else {
                    throw fail("no policy version is active; name the version to compare to with --to", code: 1)
                }
                to = active
            }
            guard let to else { return }
            let diff = try await client.call {
                try await $0.diffPolicyVersions(query: .init(from: from, to: to)).ok.body.json
            }
            if json { return try printJSON(diff) }
            print("from version \(from) to version \(to):")
            var lines = diff.added.map { "  + \($0)" } + diff.removed.map { "  - \($0)" }
            for policy in diff.changed {
                lines.append("  ~ \(policy.name)")
                lines += policy.fields.map { "      " + $0.summary }
            }
            if diff.rolesChanged { lines.append("  ~ roles") }
            print(lines.isEmpty ? "  no changes" : lines.joined(separator: "\n"))
        }

        /// What `--json` prints for a directory: the shape of `GET /api/v1/policy/diff`, against the active version,
        /// with the impact the server worked out.
        struct FilesDiff<Impact: Encodable>: Encodable {
            var against: Int64?
            var added: [String]
            var removed: [String]
            var changed: [Changed]
            var rolesChanged: Bool
            var machines: Int
            var impact: [Impact]

            enum CodingKeys: String, CodingKey {
                case against, added, removed, changed, machines, impact
                case rolesChanged = "roles_changed"
            }
        }

        struct Changed: Encodable {
            var name: String
            var fields: [FieldChange]
        }

        struct FieldChange: Encodable {
            var field: String
            var removed: [String]
            var added: [String]
            var summary: String

            init(_ change: PolicyFieldChange) {
                (field, removed, added, summary) = (change.field, change.removed, change.added, change.summary)
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a directory of policy files and make it the active version on every server.",
            discussion: """
                Shows what would change — each policy and field, and who gains or loses access on the enrolled \
                machines — and asks before applying (--yes applies without asking, for scripts). The server refuses \
                a set that names a group, OU or computer group the directory does not have, unless --allow-unknown.
                """)
        @OptionGroup var options: ServerOption
        @Argument(help: "The directory holding the policy files.") var directory: String
        @Option(help: "Why: kept with the version.") var comment: String?
        @Flag(help: "Apply even if the directory does not have entries the files name (created later).")
        var allowUnknown = false
        @Flag(name: [.customShort("y"), .long], help: "Apply without asking.") var yes = false

        func run() async throws {
            let local = try ORACommand.PolicyCommand.parseLocal(directory)
            let client = try authenticatedClient(options)
            let active = try await ORACommand.PolicyCommand.fetchActive(client)
            let checked = try await ORACommand.PolicyCommand.check(local, folder: directory, client: client)
            if !checked.unknown.isEmpty && !allowUnknown {
                let count = checked.unknown.count
                throw fail(
                    "\(count) entr\(count == 1 ? "y" : "ies") named in \(directory) \(count == 1 ? "is" : "are") not in "
                        + "the directory; nothing was applied (--allow-unknown for entries created later)", code: 2)
            }
            let report = ORACommand.PolicyCommand.report(active: active, local: local, checked: checked)
            let changes = !PolicyDiff(from: ORACommand.PolicyCommand.current(active), to: local).isEmpty
            if changes && !yes {
                print("against active version \(active.activation.map { String($0.version) } ?? "(none)"):")
                for line in report { print(line) }
                guard isatty(STDIN_FILENO) == 1 else {
                    throw fail("apply asks before it changes access: pass --yes to apply without asking", code: 64)
                }
                print("Apply these changes? [y/N] ", terminator: "")
                let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
                guard answer == "y" || answer == "yes" else { throw fail("nothing was applied", code: 1) }
            }
            let request = Components.Schemas.PolicyApplyRequest(
                files: local.files.map { .init(name: $0.name, content: $0.content) }, comment: comment,
                basedOn: active.activation?.version, basedOnNothing: active.activation == nil,
                allowUnknown: allowUnknown ? true : nil)
            let result = try await client.call { try await $0.applyPolicy(body: .json(request)).ok.body.json }
            if result.outcome == .unchanged {
                print("no change: version \(result.version) already has these files")
            } else {
                print("applied as version \(result.version)" + (yes ? ":" : ""))
                if yes { for line in report { print(line) } }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the active policy version.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let active = try await ORACommand.PolicyCommand.fetchActive(try authenticatedClient(options))
            if json { return try printJSON(active) }
            guard let activation = active.activation else {
                print("no policy has been applied: every offer is denied")
                return
            }
            print(
                "version \(activation.version) (\(activation.action.rawValue) by \(activation.actorDn), "
                    + "\(TimeText.local(activation.activatedAt)))")
            if let comment = activation.comment { print("  \(comment)") }
            for policy in active.policies {
                let effect = policy.effect == .deny ? "deny" : "allow \(policy.access?.rawValue ?? "")"
                let column = effect.padding(toLength: 14, withPad: " ", startingAt: 0)
                print("  \(column)\(policy.name)  (\(policy.location))")
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List policy activations, newest first.")
        @OptionGroup var options: ServerOption
        @Flag(help: "Print the server's JSON answer.") var json = false

        func run() async throws {
            let entries = try await authenticatedClient(options).call { try await $0.listPolicyVersions().ok.body.json }
            if json { return try printJSON(entries) }
            if entries.isEmpty { return print("no policy has been applied yet") }
            for entry in entries {
                print(
                    "\(TimeText.local(entry.activatedAt))  version \(entry.version)  \(entry.action.rawValue)  "
                        + "\(entry.actorDn)  \(entry.comment ?? "")")
            }
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make an earlier policy version active again.")
        @OptionGroup var options: ServerOption
        @Argument(help: "The version to activate.") var version: Int64
        @Option(help: "Why: kept in the history.") var comment: String?

        func run() async throws {
            let request = Components.Schemas.PolicyRollbackRequest(version: version, comment: comment)
            let result = try await authenticatedClient(options).call {
                try await $0.rollbackPolicy(body: .json(request)).ok.body.json
            }
            if result.outcome == .alreadyActive {
                return print("version \(version) is already active; nothing changed")
            }
            print("version \(version) is active again")
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say what the active policy decides for an operator offering help to a machine, and why.",
            discussion: """
                With --invitation, what it decides for the operator answering an invitation from the machine \
                instead: each allow policy's invitations rules apply (whether it answers them, what an invitation \
                opens, its longest lifetime, whether a password is required).
                """)
        @OptionGroup var options: ServerOption
        @Option(help: "The operator's user name.") var `operator`: String
        @Option(help: "The machine's name.") var machine: String
        @Option(help: "view or control.") var mode: String = "view"
        @Option(help: "The ticket id the offer would carry.") var ticket: String?
        @Option(help: "When, as ISO 8601 (default: now).") var at: String?
        @Flag(help: "Explain answering an invitation from the machine rather than offering help.")
        var invitation = false
        @Option(help: "With --invitation: how long the invitation is valid (30m, 8h, 7d).") var lifetime: String = "1h"
        @Flag(help: "With --invitation: the invitation has no password.") var withoutPassword = false
        @Flag(help: "Print the server's JSON answer.") var json = false

        func validate() throws {
            guard let lifetime = Duration(text: lifetime), lifetime >= .seconds(60), lifetime <= .seconds(604_800)
            else { throw ValidationError("--lifetime takes a time between 1m and 7d, such as 30m, 8h or 2d") }
            if !invitation, withoutPassword || self.lifetime != "1h" {
                throw ValidationError("--lifetime and --without-password go with --invitation")
            }
        }

        func run() async throws {
            guard let mode = Components.Schemas.AccessMode(rawValue: mode) else {
                throw ValidationError("--mode is view or control")
            }
            var date: Date?
            if let at {
                guard let parsed = ISO8601DateFormatter().date(from: at) else {
                    throw ValidationError("--at must be ISO 8601, such as 2026-11-23T09:00:00Z")
                }
                date = parsed
            }
            let terms = Components.Schemas.PolicyExplainInvitation(
                lifetimeSeconds: Duration(text: lifetime)?.components.seconds ?? 3600, password: !withoutPassword)
            let request = Components.Schemas.PolicyExplainRequest(
                _operator: `operator`, machine: machine, mode: mode, ticket: ticket, at: date,
                invitation: invitation ? terms : nil)
            let result = try await authenticatedClient(options).call {
                try await $0.explainPolicy(body: .json(request)).ok.body.json
            }
            // A denial is non-zero, printed as JSON or not.
            if json { try printJSON(result) } else { print(result.explanation) }
            if !result.allowed { throw ExitCode(1) }
        }
    }
}
