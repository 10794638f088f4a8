import ORACore
import Testing

@Suite("Server URLs: https, or http only to this machine")
struct ServerURLTests {
    @Test(
        "accepted, without a trailing slash",
        arguments: [
            ("https://ora.corp.example/", "https://ora.corp.example"),
            ("https://ora.corp.example:8443", "https://ora.corp.example:8443"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080/", "http://[::1]:8080"),
            ("http://localhost", "http://localhost"),
        ])
    func accepted(url: String, checked: String) {
        #expect(ServerURL.checked(url) == checked)
    }

    @Test(
        "refused: plain http off this machine, other schemes, no host, not a URL",
        arguments: [
            "http://ora.corp.example", "http://10.0.0.1:8080", "http://localhost.evil.example", "http://127.0.0.2",
            "ftp://ora.corp.example", "https://", "ora.corp.example", "https//ora.corp.example", "",
        ])
    func refused(url: String) {
        #expect(ServerURL.checked(url) == nil)
    }
}
