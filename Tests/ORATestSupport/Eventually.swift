/// Polls `value` every 100 ms until `until` holds for it, for at most `within`; returns the last value either way,
/// so a failed expectation can show it.
public func eventually<T>(
    within: Duration = .seconds(15), _ value: () async throws -> T, until: (T) -> Bool
) async throws -> T {
    let deadline = ContinuousClock.now + within
    var last = try await value()
    while !until(last), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(100))
        last = try await value()
    }
    return last
}

/// Polls `condition` every 100 ms until it holds, for at most `within`; whether it did.
public func eventually(within: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws -> Bool {
    try await eventually(within: within, condition, until: { $0 })
}
