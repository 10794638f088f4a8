import ORACore
import Testing

@Suite("Durations as administrators write them")
struct DurationTextTests {
    @Test(
        "valid durations",
        arguments: [
            ("0s", Duration.zero),
            ("500ms", .milliseconds(500)),
            ("5s", .seconds(5)),
            ("60s", .seconds(60)),
            ("10m", .seconds(600)),
            ("2h", .seconds(7_200)),
            ("1h30m", .seconds(5_400)),
            ("1d", .seconds(86_400)),
            ("1m30s250ms", .milliseconds(90_250)),
        ]
    )
    func valid(text: String, expected: Duration) {
        #expect(Duration(text: text) == expected)
    }

    @Test(
        "durations are written back the way they are read",
        arguments: [
            (Duration.zero, "0s"), (.milliseconds(500), "500ms"), (.seconds(90), "1m30s"), (.seconds(600), "10m"),
            (.seconds(86_400 + 3_600), "1d1h"), (.milliseconds(90_250), "1m30s250ms"),
        ]
    )
    func text(duration: Duration, text: String) {
        #expect(duration.text == text)
        #expect(Duration(text: duration.text) == duration)
    }

    @Test(
        "invalid durations are rejected, not guessed",
        arguments: ["", "5", "s", "5 s", "-5s", "5sec", "1.5h", "30s1m", "1h1h", "5S", "99999999999999999999s", " 5s"]
    )
    func invalid(text: String) {
        #expect(Duration(text: text) == nil)
    }
}
