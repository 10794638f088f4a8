import ArgumentParser
import Foundation
import ORACore

extension ORACommand {
    struct PolicyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "policy",
            abstract: "Work with policy files.",
            subcommands: [Check.self]
        )
    }
}

extension ORACommand.PolicyCommand {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a directory of policy files offline, reporting every mistake (for git hooks and CI).")

        @Argument(help: "The directory holding the policy files (*.yaml, *.yml).")
        var directory: String

        func run() throws {
            let files = try PolicyFiles.read(directory: directory)
            do {
                let set = try PolicyParser.parse(files)
                let allow = set.policies.filter { if case .allow = $0.effect { return true } else { return false } }
                    .count
                print(
                    "\(directory): \(set.policies.count) policies (\(allow) allow, \(set.policies.count - allow) deny) "
                        + "in \(files.count) file\(files.count == 1 ? "" : "s") are valid; version \(set.contentHash.prefix(12))"
                )
            } catch {
                for mistake in error.errors {
                    FileHandle.standardError.write(Data("\(directory)/\(mistake)\n".utf8))
                }
                let count = error.errors.count
                throw fail(
                    "\(count) mistake\(count == 1 ? "" : "s") in \(directory); nothing is valid until all are fixed",
                    code: 1)
            }
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
