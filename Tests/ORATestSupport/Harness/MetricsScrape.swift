public import Foundation

/// One scrape of a server's `GET /metrics`: each sample's value by its series, as the text format writes it
/// (`ora_offers_total{outcome="accepted"}`), and the text itself.
public struct MetricsScrape: Sendable {
    public let text: String
    public let samples: [String: Double]

    /// Scrapes `server`.
    public init(_ server: RunningServer) async throws {
        let answer = try await HTTP.get(server.base + "/metrics")
        guard answer.status == 200 else { throw TestSetupError("GET /metrics: \(answer.status) \(answer.body)") }
        self.init(text: answer.body)
    }

    /// Reads scraped `text`.
    public init(text: String) {
        self.text = text
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            samples[String(line[..<space])] = value
        }
        self.samples = samples
    }

    /// The value of `series` (`name` or `name{label="value"}`), or nil when the scrape has no such series.
    public subscript(_ series: String) -> Double? {
        samples[series]
    }

    /// How much `series` grew since `earlier` (a series missing from either counts as 0).
    public func growth(of series: String, since earlier: MetricsScrape) -> Double {
        (self[series] ?? 0) - (earlier[series] ?? 0)
    }

    /// The names of the families the scrape describes (`# TYPE` lines).
    public var families: Set<String> {
        Set(
            text.split(separator: "\n").compactMap { line in
                guard line.hasPrefix("# TYPE ") else { return nil }
                return line.split(separator: " ").dropFirst(2).first.map(String.init)
            })
    }
}
