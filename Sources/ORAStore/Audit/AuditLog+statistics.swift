public import Foundation
import Logging
import PostgresNIO

extension AuditLog {
    /// What the security team's charts show for a stretch of time: counted by the database over the indexed time
    /// column, so that the answer's size does not grow with the log's.
    public struct Statistics: Sendable, Equatable {
        /// One day (in the asked time zone) of offers.
        public struct Day: Sendable, Equatable {
            /// The day, `2026-12-05`.
            public var day: String
            /// Sessions offered and allowed (`offer.requested`).
            public var sessions: Int
            /// Offers refused (`offer.denied`).
            public var denials: Int
        }

        /// A name and how often it occurs.
        public struct Count: Sendable, Equatable {
            public var name: String
            public var count: Int
        }

        /// The days with offers, in order.
        public var days: [Day]
        /// The operators who offered help most, by their account name.
        public var topOperators: [Count]
        /// The machines offered help most.
        public var topMachines: [Count]
        /// How the people at the machines answered offers: `granted`, `declined`, `timeout`.
        public var consent: [String: Int]
    }

    /// Counts offers, refusals, answers, operators and machines between `since` and `until`, days in `timeZone`.
    /// - Parameters:
    ///   - timeZone: an IANA name (`Europe/Berlin`) the caller checked.
    ///   - top: how many operators and machines to name.
    public func statistics(since: Date, until: Date, timeZone: String, top: Int = 10) async throws -> Statistics {
        var days: [Statistics.Day] = []
        let dayRows = try await client.query(
            """
            SELECT to_char(date_trunc('day', occurred_at AT TIME ZONE \(timeZone)), 'YYYY-MM-DD') AS day,
                count(*) FILTER (WHERE event = 'offer.requested')::int,
                count(*) FILTER (WHERE event = 'offer.denied')::int
            FROM audit_events
            WHERE occurred_at >= \(since) AND occurred_at < \(until) AND event IN ('offer.requested', 'offer.denied')
            GROUP BY 1 ORDER BY 1
            """,
            logger: logger)
        for try await (day, sessions, denials) in dayRows.decode((String, Int, Int).self) {
            days.append(Statistics.Day(day: day, sessions: sessions, denials: denials))
        }
        func counts(_ column: String) async throws -> [Statistics.Count] {
            var query: PostgresQuery = """
                SELECT \(unescaped: column), count(*)::int FROM audit_events
                WHERE occurred_at >= \(since) AND occurred_at < \(until) AND event = 'offer.requested'
                    AND \(unescaped: column) IS NOT NULL
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT \(top)
                """
            query.sql = query.sql.trimmingCharacters(in: .whitespacesAndNewlines)
            var result: [Statistics.Count] = []
            for try await (name, count) in try await client.query(query, logger: logger).decode((String, Int).self) {
                result.append(Statistics.Count(name: name, count: count))
            }
            return result
        }
        var consent: [String: Int] = ["granted": 0, "declined": 0, "timeout": 0]
        let answers = try await client.query(
            """
            SELECT substring(event FROM 9), count(*)::int FROM audit_events
            WHERE occurred_at >= \(since) AND occurred_at < \(until)
                AND event IN ('consent.granted', 'consent.declined', 'consent.timeout')
            GROUP BY 1
            """,
            logger: logger)
        for try await (answer, count) in answers.decode((String, Int).self) { consent[answer] = count }
        return Statistics(
            days: days, topOperators: try await counts("actor_name"), topMachines: try await counts("machine"),
            consent: consent)
    }
}
