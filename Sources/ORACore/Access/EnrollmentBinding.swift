public import Crypto
import Foundation

/// What one enrollment token may enroll: one machine by name, the computers below an organisational unit, or the
/// members of a computer group (nested groups included). A token that fits none of these does not exist: whoever
/// holds a token can enroll only what an administrator meant it for.
public enum EnrollmentBinding: Sendable, Hashable, CustomStringConvertible {
    /// The machine of this name (lower case).
    case machine(String)
    /// Any computer object at or below this organisational unit.
    case organizationalUnit(DistinguishedName)
    /// Any computer that is a member of this group, directly or through nested groups.
    case computerGroup(DistinguishedName)

    /// The kind as stored and shown: `machine`, `ou` or `group`.
    public var kind: String {
        switch self {
        case .machine: "machine"
        case .organizationalUnit: "ou"
        case .computerGroup: "group"
        }
    }

    /// The name or DN it is bound to, as stored and shown.
    public var value: String {
        switch self {
        case .machine(let name): name
        case .organizationalUnit(let dn), .computerGroup(let dn): dn.original
        }
    }

    /// `machine ws-0101`, `ou ou=Laptops,…`, `group cn=Finance Workstations,…`.
    public var description: String { "\(kind) \(value)" }

    /// The binding stored as `kind` and `value`.
    /// - Throws: `EnrollmentBindingError` naming what is wrong.
    public init(kind: String, value: String) throws(EnrollmentBindingError) {
        switch kind {
        case "machine":
            guard AgentProtocol.isReportable(value), !value.contains(where: \.isWhitespace) else {
                throw EnrollmentBindingError(
                    "'machine' must be a machine name of 1 to 200 characters without spaces or control characters")
            }
            self = .machine(value.lowercased())
        case "ou", "group":
            let dn: DistinguishedName
            do {
                dn = try DistinguishedName(value)
            } catch {
                throw EnrollmentBindingError("'\(kind)' must be a DN: \(error.description)")
            }
            guard !dn.rdns.isEmpty else { throw EnrollmentBindingError("'\(kind)' must be a DN, not empty") }
            guard value.utf8.count <= 1024 else { throw EnrollmentBindingError("'\(kind)' is longer than 1024 bytes") }
            self = kind == "ou" ? .organizationalUnit(dn) : .computerGroup(dn)
        default:
            throw EnrollmentBindingError("a token is bound to a 'machine', an 'ou' or a 'group', not '\(kind)'")
        }
    }

    /// Whether a machine that says it is called `name` could be enrolled by this token, before the directory is
    /// asked: only a machine-bound token rules a name out here.
    public func mayName(_ name: String) -> Bool {
        guard case .machine(let bound) = self else { return true }
        return bound == name.lowercased()
    }

    /// Whether the directory's `computer` is one this token may enroll.
    public func admits(_ computer: Computer) -> Bool {
        switch self {
        case .machine(let name): computer.name.lowercased() == name
        case .organizationalUnit(let ou): computer.dn.isWithin(ou) && computer.dn != ou
        case .computerGroup(let group): computer.groups.contains(group)
        }
    }
}

/// A binding that cannot be used, with what was wrong.
public struct EnrollmentBindingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    public var description: String

    /// Creates the error.
    public init(_ description: String) {
        self.description = description
    }
}

extension DevicePublicKey {
    /// The fingerprint of the key written as `text`: `SHA256:` and the unpadded base64 of the SHA-256 of its DER,
    /// as OpenSSH shows keys; `nil` for text that is not base64.
    public static func fingerprint(_ text: String) -> String? {
        guard let bytes = Data(base64Encoded: text) else { return nil }
        let digest = Data(SHA256.hash(data: bytes)).base64EncodedString()
        return "SHA256:" + digest.replacingOccurrences(of: "=", with: "")
    }
}
