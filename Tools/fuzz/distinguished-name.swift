import ORACore

// Fuzzes `DistinguishedName`, which parses the DNs in policy files and in what the directory returns. The input is
// the DN's text, as UTF-8 (invalid sequences are replaced, as everywhere a DN is read from text).
//
// Checked for every input, besides not crashing, not hanging and not running out of memory:
// * a DN that parses re-parses from its normalized form to an equal DN with the same normalized form;
// * its parent, written out again, re-parses to its parent, and every ancestor contains it;
// * each attribute value, escaped, reads back as that value.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let dn: DistinguishedName
    do {
        dn = try DistinguishedName(text)
    } catch {
        guard error.text == text else { fatalError("the error names other text than was given") }
        return 0
    }
    guard dn.original == text else { fatalError("the original text was not kept") }

    do {
        let normalized = try DistinguishedName(dn.normalized)
        guard normalized == dn else { fatalError("\(text) is not equal to its normalized form \(dn.normalized)") }
        guard normalized.normalized == dn.normalized else { fatalError("normalizing \(text) twice changes it") }
    } catch {
        fatalError("the normalized form \(dn.normalized) of \(text) does not parse: \(error)")
    }

    guard dn.isWithin(dn) else { fatalError("\(text) is not within itself") }
    if let parent = dn.parent {
        do {
            let reparsed = try DistinguishedName(parent.original)
            guard reparsed == parent else { fatalError("the parent of \(text) does not re-parse to it") }
        } catch {
            fatalError("the parent \(parent.original) of \(text) does not parse: \(error)")
        }
        for ancestor in dn.ancestors {
            guard dn.isWithin(ancestor) else { fatalError("\(text) is not within its ancestor \(ancestor)") }
            guard !ancestor.isWithin(dn) else { fatalError("the ancestor \(ancestor) is within \(text)") }
        }
    }

    for attribute in dn.rdns.joined() {
        let escaped = "cn=" + DistinguishedName.escape(attribute.value)
        do {
            let value = try DistinguishedName(escaped).rdns.first?.first?.value
            guard value == attribute.value else {
                fatalError("the value \(attribute.value) escaped reads back as \(value ?? "")")
            }
        } catch {
            fatalError("the escaped value \(escaped) does not parse: \(error)")
        }
    }
    return 0
}
