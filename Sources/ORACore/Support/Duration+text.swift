extension Duration {
    /// Reads a duration as administrators write it in configuration and policy files.
    ///
    /// A duration is one or more whole numbers, each followed by a unit: `ms`, `s`, `m`, `h` or `d`, largest unit
    /// first, for example `500ms`, `60s`, `2h`, `1h30m`. Zero is written `0s`.
    /// - Parameter text: the text to read.
    /// - Returns: the duration, or `nil` when `text` is not a duration in this form.
    public init?(text: some StringProtocol) {
        let units: [(suffix: String, milliseconds: Int64)] = [
            ("d", 86_400_000), ("h", 3_600_000), ("ms", 1), ("m", 60_000), ("s", 1_000),
        ]
        var remaining = Substring(text)
        guard !remaining.isEmpty else { return nil }
        var total: Int64 = 0
        var lastUnitSize = Int64.max
        while !remaining.isEmpty {
            let digits = remaining.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 12, let value = Int64(digits) else { return nil }
            remaining = remaining.dropFirst(digits.count)
            guard let unit = units.first(where: { remaining.hasPrefix($0.suffix) }) else { return nil }
            // "1m30s" is fine; "30s1m" and "1h1h" are mistakes worth reporting rather than adding up.
            guard unit.milliseconds < lastUnitSize else { return nil }
            lastUnitSize = unit.milliseconds
            remaining = remaining.dropFirst(unit.suffix.count)
            let (product, overflow) = value.multipliedReportingOverflow(by: unit.milliseconds)
            guard !overflow else { return nil }
            total += product
        }
        self = .milliseconds(total)
    }
}

extension Duration {
    /// The duration as administrators write it, largest units first: `90s` is `1m30s`, zero is `0s`. Reading the
    /// text back with `init(text:)` gives the same duration, to the millisecond.
    public var text: String {
        var remaining = wholeMilliseconds
        guard remaining > 0 else { return "0s" }
        var result = ""
        for (suffix, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)]
        where remaining >= size {
            result += "\(remaining / size)\(suffix)"
            remaining %= size
        }
        return result
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded towards zero.
    public var wholeMilliseconds: Int64 {
        components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }
}
