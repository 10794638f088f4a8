import Crypto
import Foundation
import ORACore
import Testing

/// The doctor's report: signed by the machine's key over every field, recent, and of a bounded shape.
@Suite("Doctor's report: signature, age and shape")
struct DoctorReportTests {
    let key = P256.Signing.PrivateKey()
    let now = Date(timeIntervalSince1970: 1_796_000_000)
    let checks = [
        DoctorReport.Check(name: "display", ok: true, detail: "X11 display :0 answers"),
        DoctorReport.Check(name: "screen", ok: false, detail: "x11vnc is not installed; fix: apt-get install x11vnc"),
    ]

    func report(at time: Date? = nil) throws -> DoctorReport {
        try DoctorReport(machine: "ws-0101", checks: checks, at: time ?? now, signingWith: key)
    }

    @Test("a report signed by the machine's key, made now, is taken, with its time to the millisecond")
    func valid() throws {
        let made = now.addingTimeInterval(0.25)
        let signed = try report(at: made)
        #expect(signed.time == "2026-11-30T00:53:20.250Z")
        #expect(try signed.verify(with: key.publicKey, now: now) == made)
        #expect(!signed.ok)
        // Through JSON, as it travels, it still verifies.
        let decoded = try JSONDecoder().decode(DoctorReport.self, from: try JSONEncoder().encode(signed))
        #expect(try decoded.verify(with: key.publicKey, now: now) == made)
    }

    @Test("another key, a changed field, an old or future time, a malformed check: each refused with its reason")
    func refused() throws {
        let other = P256.Signing.PrivateKey().publicKey
        #expect(throws: DoctorReportError.badSignature) { try report().verify(with: other, now: now) }
        var changed = try report()
        changed.checks[1].ok = true
        #expect(throws: DoctorReportError.badSignature) { try changed.verify(with: key.publicKey, now: now) }
        var renamed = try report()
        renamed.machine = "ws-0102"
        #expect(throws: DoctorReportError.badSignature) { try renamed.verify(with: key.publicKey, now: now) }
        #expect(throws: DoctorReportError.stale) {
            try report(at: now.addingTimeInterval(-301)).verify(with: key.publicKey, now: now)
        }
        #expect(throws: DoctorReportError.stale) {
            try report(at: now.addingTimeInterval(301)).verify(with: key.publicKey, now: now)
        }
        for (bad, reason) in [
            ([DoctorReport.Check](), "1 to 20 checks"),
            (
                [DoctorReport.Check(name: "Screen!", ok: true, detail: "")],
                "a check's name is 1 to 32 lower-case letters or '_'"
            ),
            (
                [DoctorReport.Check(name: "screen", ok: true, detail: String(repeating: "x", count: 1001))],
                "a check's detail is at most 1000 characters"
            ),
        ] {
            let malformed = try DoctorReport(machine: "ws-0101", checks: bad, at: now, signingWith: key)
            #expect(throws: DoctorReportError.invalid(reason)) { try malformed.verify(with: key.publicKey, now: now) }
        }
    }
}
