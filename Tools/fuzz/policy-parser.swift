import ORACore

// Fuzzes `PolicyParser.parse`, which reads the policy files an administrator uploads (YAML through Yams and libyaml,
// then ora's strict reading of every setting, DNs, time zones and ticket patterns included). The input is one file,
// or two files when it holds a NUL byte: the text before the first NUL and the text after it, so that names used
// in both files are read too. Invalid UTF-8 is replaced, as when a file is read as text.
//
// Checked for every input, besides not crashing, not hanging and not running out of memory:
// * a set that is refused names at least one mistake, each with a position inside the files (line and column from
//   1) and a message;
// * a set that parses, written out as one file (`PolicySet.yaml`), parses again to the same policies and roles.

/// `policies` with their positions cleared: a set written out again has every policy in another place.
private func withoutLocations(_ policies: [Policy]) -> [Policy] {
    policies.map { policy in
        var copy = policy
        copy.location = SourceLocation(file: "", line: 0, column: 0)
        return copy
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var files: [PolicySet.File] = []
    if let separator = bytes.firstIndex(of: 0) {
        files.append(PolicySet.File(name: "a.yaml", content: String(decoding: bytes[..<separator], as: UTF8.self)))
        files.append(
            PolicySet.File(name: "b.yaml", content: String(decoding: bytes[(separator + 1)...], as: UTF8.self)))
    } else {
        files.append(PolicySet.File(name: "a.yaml", content: String(decoding: bytes, as: UTF8.self)))
    }

    let set: PolicySet
    do {
        set = try PolicyParser.parse(files)
    } catch {
        guard !error.errors.isEmpty else { fatalError("a set was refused without a mistake named") }
        for mistake in error.errors {
            guard !mistake.message.isEmpty else { fatalError("a mistake without a message: \(mistake)") }
            guard files.contains(where: { $0.name == mistake.file }) else {
                fatalError("a mistake in no file: \(mistake)")
            }
            if let location = mistake.location {
                guard location.line >= 1 && location.column >= 1 else {
                    fatalError("a mistake at no position: \(mistake)")
                }
            }
        }
        return 0
    }
    guard set.files == files else { fatalError("the set does not keep its files") }

    let written = set.yaml
    do {
        let again = try PolicyParser.parse([PolicySet.File(name: "written.yaml", content: written)])
        guard withoutLocations(again.policies) == withoutLocations(set.policies) else {
            fatalError("the policies changed when written out and read again:\n\(written)")
        }
        guard again.roles == set.roles else {
            fatalError("the roles changed when written out and read again:\n\(written)")
        }
    } catch {
        fatalError("the set written out does not parse again: \(error)\n\(written)")
    }
    return 0
}
