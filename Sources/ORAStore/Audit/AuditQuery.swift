import Foundation
import ORACore
import PostgresNIO

/// A query over `audit_events` built from a filter: the SQL is fixed text with numbered parameters, every value
/// from the filter is a bound parameter.
struct AuditQuery {
    private var conditions: [String] = []
    private var bindings = PostgresBindings()

    init(filter: AuditLog.Filter) {
        if let since = filter.since { add("occurred_at >= ", since.date) }
        if let until = filter.until { add("occurred_at < ", until.date) }
        if let event = filter.event {
            if let prefix = Self.prefix(of: event) {
                add("starts_with(event, ", prefix, ")")
            } else {
                add("event = ", event)
            }
        }
        if let code = filter.code { add("code = ", code) }
        if let name = filter.operatorName {
            if name.contains("=") {
                // However the DN is spelt, here and in the log: `\,` or `\2C`, spaces after commas, case.
                add("ora_dn_key(actor_id) = ora_dn_key(", name, ")")
            } else {
                add("lower(actor_name) = lower(", name, ")")
            }
            conditions[conditions.count - 1] += " AND actor_kind = 'operator'"
        }
        if let machine = filter.machine { add("lower(machine) = lower(", machine, ")") }
        if let session = filter.session { add("session_id = ", session) }
        if let outcome = filter.outcome { add("outcome = ", outcome.rawValue) }
        if let text = filter.text { add("details::text ILIKE ", "%" + Self.escapeLike(text) + "%") }
        if let from = filter.fromSequence { add("sequence >= ", from) }
    }

    /// Adds the condition `prefix $n suffix` with `value` bound as `$n`.
    mutating func add(_ prefix: String, _ value: some PostgresDynamicTypeEncodable, _ suffix: String = "") {
        bindings.append(value)
        conditions.append(prefix + "$\(bindings.count)" + suffix)
    }

    /// The query for the selected events in sequence order.
    func select(order: String, limit: Int?) -> PostgresQuery {
        var sql = "SELECT \(AuditLog.columns) FROM audit_events"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY sequence \(order)"
        if let limit { sql += " LIMIT \(limit)" }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    /// `offer.` and `offer.*` select every `offer.…` event.
    private static func prefix(of event: String) -> String? {
        if event.hasSuffix(".*") { return String(event.dropLast()) }
        if event.hasSuffix(".") { return event }
        return nil
    }

    /// `text` matched literally by ILIKE: its wildcards and the escape character are escaped.
    private static func escapeLike(_ text: String) -> String {
        var result = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { result.append("\\") }
            result.append(character)
        }
        return result
    }
}
