public import Crypto
public import Foundation

/// What `ora-agent doctor` found on a machine, signed with the machine's device key: the agent sends it to the
/// server, which keeps the latest of each machine for its administrators (`ora agents show`). Only the machine's
/// own key can sign it, and its time must be recent, so a report can be neither forged nor replayed late.
public struct DoctorReport: Sendable, Hashable, Codable {
    /// One check, as the doctor printed it.
    public struct Check: Sendable, Hashable, Codable {
        /// What was checked: `enrollment`, `server`, `clock`, `display`, `screen`, `consent`.
        public var name: String
        /// Whether it passed.
        public var ok: Bool
        /// What the doctor said of it: what is there, or what is wrong and how to fix it.
        public var detail: String

        public init(name: String, ok: Bool, detail: String) {
            self.name = name
            self.ok = ok
            self.detail = detail
        }
    }

    /// The most checks a report may carry, and the longest name and detail.
    public static let maximumChecks = 20
    public static let maximumNameLength = 32
    public static let maximumDetailLength = 1_000
    /// How far a report's time may be from the server's.
    public static let maximumAge: TimeInterval = 300

    /// The machine's name, as it enrolled.
    public var machine: String
    /// When the doctor ran, RFC 3339 in UTC, to the millisecond.
    public var time: String
    public var checks: [Check]
    /// Base64 of the raw ECDSA P-256 signature of `signedMessage` by the device key.
    public var signature: String

    /// RFC 3339 with milliseconds: one machine's reports are told apart however quickly they come.
    private static var timeFormat: ISO8601DateFormatter {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format
    }

    /// Whether every check passed: a session would work.
    public var ok: Bool { checks.allSatisfy(\.ok) }

    /// Signs `checks` for `machine` at `time` with the device key.
    public init(
        machine: String, checks: [Check], at time: Date, signingWith key: P256.Signing.PrivateKey
    ) throws {
        self.machine = machine
        self.time = Self.timeFormat.string(from: time)
        self.checks = checks
        self.signature = ""
        self.signature = try key.base64Signature(for: signedMessage)
    }

    /// The exact bytes signed: canonical JSON of every field but the signature, with a purpose no other signed
    /// message of ora has.
    public var signedMessage: [UInt8] {
        var writer = JSONWriter()
        writer.raw("{\"checks\":[")
        for (index, check) in checks.enumerated() {
            if index > 0 { writer.raw(",") }
            writer.raw("{\"detail\":")
            writer.string(check.detail)
            writer.raw(",\"name\":")
            writer.string(check.name)
            writer.raw(check.ok ? ",\"ok\":true}" : ",\"ok\":false}")
        }
        writer.raw("],\"machine\":")
        writer.string(machine)
        writer.raw(",\"purpose\":\"ora.doctor.v1\",\"time\":")
        writer.string(time)
        writer.raw("}")
        return writer.bytes
    }

    /// Checks the report's shape, that `key` signed it, and that it was made within `maximumAge` of `now`.
    /// - Returns: when the doctor ran.
    /// - Throws: `DoctorReportError` naming the first problem.
    public func verify(with key: P256.Signing.PublicKey, now: Date) throws(DoctorReportError) -> Date {
        guard !checks.isEmpty, checks.count <= Self.maximumChecks else { throw .invalid("1 to 20 checks") }
        for check in checks {
            guard (1...Self.maximumNameLength).contains(check.name.count),
                check.name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isLowercase || $0 == "_") })
            else { throw .invalid("a check's name is 1 to 32 lower-case letters or '_'") }
            guard check.detail.count <= Self.maximumDetailLength else {
                throw .invalid("a check's detail is at most 1000 characters")
            }
        }
        guard key.isValid(base64Signature: signature, for: signedMessage) else { throw .badSignature }
        guard let made = Self.timeFormat.date(from: time) else {
            throw .invalid("time must be RFC 3339 with milliseconds")
        }
        guard abs(made.timeIntervalSince(now)) <= Self.maximumAge else { throw .stale }
        return made
    }
}

/// Why a doctor's report was refused.
public enum DoctorReportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not signed by the machine's enrolled key.
    case badSignature
    /// Made more than five minutes from the server's time (or replayed).
    case stale
    /// Malformed, as said.
    case invalid(String)

    public var description: String {
        switch self {
        case .badSignature: "the report is not signed by the machine's enrolled key"
        case .stale: "the report's time is more than 5 minutes from the server's: check the machine's clock"
        case .invalid(let what): "the report is not valid: \(what)"
        }
    }
}
