import Hummingbird
import ORACore

/// A request's query parameters, each read once; what is left over is an error, so that a misspelt filter is not
/// silently ignored. A parameter given with an empty value counts as not given.
struct QueryParameters {
    private var values: [String: String] = [:]

    /// The parameters of `request`.
    /// - Throws: `invalid_parameter` for a parameter given more than once.
    init(_ request: Request) throws(APIError) {
        try self.init(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
    }

    /// The parameters `parameters`.
    /// - Throws: `invalid_parameter` for a parameter given more than once.
    init(_ parameters: [(String, String)]) throws(APIError) {
        for (name, value) in parameters {
            guard values[name] == nil else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "\(name) is given more than once")
            }
            values[name] = value
        }
    }

    /// The value of `name`, taken: reading it again gives `nil`.
    mutating func take(_ name: String) -> String? {
        values.removeValue(forKey: name).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A text of at most `longest` characters without control characters.
    mutating func text(_ name: String, atMost longest: Int) throws(APIError) -> String? {
        guard let text = take(name) else { return nil }
        guard text.count <= longest,
            !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw APIError(
                .badRequest, code: "invalid_parameter",
                message: "\(name) must be at most \(longest) characters without control characters")
        }
        return text
    }

    /// A whole number in `range`.
    mutating func integer(_ name: String, in range: ClosedRange<Int64>) throws(APIError) -> Int64? {
        guard let text = take(name) else { return nil }
        guard let value = Int64(text), range.contains(value) else {
            throw APIError(
                .badRequest, code: "invalid_parameter",
                message:
                    "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(text)\"")
        }
        return value
    }

    /// `true` or `false`.
    mutating func boolean(_ name: String) throws(APIError) -> Bool? {
        guard let text = take(name) else { return nil }
        guard let value = Bool(text) else {
            throw APIError(
                .badRequest, code: "invalid_parameter", message: "\(name) must be true or false, not \"\(text)\"")
        }
        return value
    }

    /// One of `choices`.
    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ name: String, of type: Choice.Type
    ) throws(APIError) -> Choice? where Choice.RawValue == String {
        guard let text = take(name) else { return nil }
        guard let value = Choice(rawValue: text) else {
            let choices = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            throw APIError(
                .badRequest, code: "invalid_parameter", message: "\(name) must be one of \(choices), not \"\(text)\"")
        }
        return value
    }

    /// A distinguished name (RFC 4514).
    mutating func distinguishedName(_ name: String) throws(APIError) -> DistinguishedName? {
        guard let text = try text(name, atMost: 1000) else { return nil }
        do {
            return try DistinguishedName(text)
        } catch {
            throw APIError(
                .badRequest, code: "invalid_parameter",
                message:
                    "\(name) must be a distinguished name such as ou=Workstations,dc=corp,dc=example: \(error.reason)")
        }
    }

    /// Refuses what was not taken.
    /// - Throws: `invalid_parameter` naming the first (alphabetically) parameter nobody read.
    func rejectUnknown() throws(APIError) {
        guard let name = values.keys.sorted().first else { return }
        throw APIError(.badRequest, code: "invalid_parameter", message: "unknown query parameter \"\(name)\"")
    }
}
