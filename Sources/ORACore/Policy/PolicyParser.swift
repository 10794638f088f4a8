public import Foundation

/// Reads a set of policy files and reports **every** mistake, each with its file, line, column and setting, in words
/// an administrator understands. Nothing is applied unless the whole set is valid.
public enum PolicyParser {
    /// Parses `files` as one set.
    /// - Returns: the set.
    /// - Throws: `PolicyErrors` with every mistake found in every file.
    public static func parse(_ files: [PolicySet.File]) throws(PolicyErrors) -> PolicySet {
        let reader = Reader()
        for file in files.sorted(by: { $0.name < $1.name }) {
            reader.read(file)
        }
        guard reader.errors.isEmpty else { throw PolicyErrors(errors: reader.errors) }
        return PolicySet(policies: reader.policies, roles: reader.roles, files: files, references: reader.references)
    }

    private final class Reader {
        var errors: [YAMLError] = []
        var policies: [Policy] = []
        var roles = RoleAssignments()
        var references: [DirectoryReference] = []
        var names: [String: SourceLocation] = [:]
        /// Compiled ticket patterns and time zones by their text: sets repeat a few of them many times.
        var expressions: [String: TicketExpression] = [:]
        var timeZones: [String: TimeZone] = [:]

        func attempt<Value>(_ body: () throws(YAMLError) -> Value) -> Value? {
            do {
                return try body()
            } catch {
                errors.append(error)
                return nil
            }
        }

        func read(_ file: PolicySet.File) {
            let root: YAMLNode?
            do {
                root = try YAMLNode.parse(file.content, file: file.name)
            } catch {
                errors.append(error)
                return
            }
            guard let root else { return }  // an empty file holds no policies
            guard var mapping = attempt({ () throws(YAMLError) in try root.mapping() }) else { return }
            if let list = mapping.optional("policies"),
                let elements = attempt({ () throws(YAMLError) in try list.list() })
            {
                for element in elements {
                    if let policy = readPolicy(element) { policies.append(policy) }
                }
            }
            if let node = mapping.optional("roles") { readRoles(node) }
            errors += mapping.unknownKeyErrors()
        }

        func readRoles(_ node: YAMLNode) {
            guard var mapping = attempt({ () throws(YAMLError) in try node.mapping() }) else { return }
            if let list = mapping.optional("administrators") {
                roles.administrators.formUnion(readDNs(list, naming: .operatorGroup))
            }
            if let list = mapping.optional("auditors") {
                roles.auditors.formUnion(readDNs(list, naming: .operatorGroup))
            }
            errors += mapping.unknownKeyErrors()
        }

        /// The DNs of the list `node`, each noted with where it is written as naming an entry of `kind`.
        func readDNs(_ node: YAMLNode, naming kind: DirectoryReference.Kind) -> [DistinguishedName] {
            guard let elements = attempt({ () throws(YAMLError) in try node.list() }) else { return [] }
            return elements.compactMap { readDN($0, naming: kind) }
        }

        /// The DN `node` holds, noted with where it is written as naming an entry of `kind`.
        func readDN(_ node: YAMLNode, naming kind: DirectoryReference.Kind) -> DistinguishedName? {
            let dn = attempt { () throws(YAMLError) in
                let text = try node.nonEmptyString()
                do {
                    return try DistinguishedName(text)
                } catch {
                    throw node.error("\(error)")
                }
            }
            if let dn {
                references.append(
                    DirectoryReference(dn: dn, kind: kind, location: node.location, keyPath: node.keyPath))
            }
            return dn
        }

        func readPolicy(_ node: YAMLNode) -> Policy? {
            guard var mapping = attempt({ () throws(YAMLError) in try node.mapping() }) else { return nil }
            let errorCount = errors.count
            let location = node.location ?? SourceLocation(file: node.file, line: 1, column: 1)

            let name: String? = attempt { () throws(YAMLError) in
                let nameNode = try mapping.required("name")
                let name = try nameNode.nonEmptyString()
                guard name.unicodeScalars.allSatisfy({ Self.nameCharacters.contains($0) }), name.count <= 100 else {
                    throw nameNode.error(
                        "a policy name may hold letters, digits, '-', '_' and '.' (at most 100), found \"\(name)\"")
                }
                if let first = names[name.lowercased()] {
                    throw nameNode.error("the name \"\(name)\" is already used at \(first)")
                }
                names[name.lowercased()] = nameNode.location ?? location
                return name
            }
            let description = attempt { () throws(YAMLError) in try mapping.optional("description")?.string() } ?? nil

            let isDeny =
                attempt { () throws(YAMLError) in
                    try mapping.optional("effect")?.choice(["allow", "deny"]) == "deny"
                } ?? false
            var access: AccessMode?
            if let allowNode = mapping.optional("allow") {
                if isDeny {
                    errors.append(allowNode.error("a deny policy allows nothing; remove allow or the effect"))
                } else {
                    access =
                        attempt { () throws(YAMLError) in
                            AccessMode(rawValue: try allowNode.choice(AccessMode.allCases.map(\.rawValue)))
                        } ?? nil
                }
            } else if !isDeny {
                errors.append(
                    YAMLError(
                        file: node.file, location: location, keyPath: YAMLMapping.join(node.keyPath, "allow"),
                        message: "is required for an allow policy: view or control"))
            }

            let helpers = attempt { () throws(YAMLError) in try readHelpers(try mapping.required("helpers")) } ?? nil
            let targets = attempt { () throws(YAMLError) in try readTargets(try mapping.required("targets")) } ?? nil

            var ticketExpression: TicketExpression?
            if let requireNode = mapping.optional("require") {
                if isDeny {
                    errors.append(requireNode.error("requirements apply to allow policies only"))
                } else if var require = attempt({ () throws(YAMLError) in try requireNode.mapping() }) {
                    if let ticketNode = require.optional("ticket") {
                        ticketExpression =
                            attempt { () throws(YAMLError) in
                                let pattern = try ticketNode.nonEmptyString()
                                guard pattern.utf16.count <= TicketExpression.maximumPatternLength else {
                                    throw ticketNode.error(
                                        "a ticket pattern may be at most \(TicketExpression.maximumPatternLength) "
                                            + "characters long; this one has \(pattern.utf16.count)")
                                }
                                if let compiled = expressions[pattern] { return compiled }
                                let compiled = TicketExpression(pattern: pattern)
                                guard compiled.isValid else {
                                    throw ticketNode.error("not a valid regular expression: \(pattern)")
                                }
                                expressions[pattern] = compiled
                                return compiled
                            } ?? nil
                    }
                    errors += require.unknownKeyErrors()
                }
            }
            let schedule = mapping.optional("schedule").flatMap { scheduleNode in
                attempt { () throws(YAMLError) in try readSchedule(scheduleNode) }
            }
            let consentTimeout = mapping.optional("consent_timeout").flatMap { timeoutNode in
                attempt { () throws(YAMLError) in try timeoutNode.duration(in: .seconds(10) ... .seconds(600)) }
            }
            let maximumDuration = mapping.optional("max_duration").flatMap { durationNode in
                attempt { () throws(YAMLError) in try durationNode.duration(in: .seconds(60) ... .seconds(86_400)) }
            }
            var invitations = Policy.InvitationRules()
            if let invitationsNode = mapping.optional("invitations") {
                if isDeny {
                    errors.append(
                        invitationsNode.error(
                            "a deny policy answers no invitations: it denies them as it denies offers; "
                                + "remove invitations"))
                } else if let rules = attempt({ () throws(YAMLError) in
                    try readInvitationRules(invitationsNode, access: access ?? .view)
                }) {
                    invitations = rules
                }
            }
            errors += mapping.unknownKeyErrors { key in
                Self.consentKeys.contains(key)
                    ? "consent cannot be configured: the person at the machine is always asked, and no answer is a no"
                    : nil
            }

            guard errors.count == errorCount, let name, let helpers, let targets else { return nil }
            var policy = Policy(
                name: name,
                description: description,
                location: location,
                effect: isDeny ? .deny : .allow(access ?? .view),
                helpers: helpers,
                targets: targets,
                schedule: schedule,
                consentTimeout: consentTimeout ?? Policy.defaultConsentTimeout,
                maximumDuration: maximumDuration ?? Policy.defaultMaximumDuration,
                invitations: invitations)
            policy.ticketExpression = ticketExpression
            return policy
        }

        func readInvitationRules(_ node: YAMLNode, access: AccessMode) throws(YAMLError) -> Policy.InvitationRules {
            var mapping = try node.mapping()
            var rules = Policy.InvitationRules()
            if let answer = mapping.optional("answer") {
                rules.answer = attempt { () throws(YAMLError) in try answer.bool() } ?? true
            }
            if let allowNode = mapping.optional("allow") {
                rules.access =
                    attempt { () throws(YAMLError) in
                        let mode = AccessMode(rawValue: try allowNode.choice(AccessMode.allCases.map(\.rawValue)))
                        if let mode, mode > access {
                            throw allowNode.error(
                                "an invitation cannot open more than the policy allows (\(access.rawValue)); "
                                    + "use \(access.rawValue) or less")
                        }
                        return mode
                    } ?? nil
            }
            if let lifetime = mapping.optional("max_lifetime") {
                rules.maximumLifetime =
                    attempt { () throws(YAMLError) in
                        try lifetime.duration(in: .seconds(60)...Policy.InvitationRules.longestLifetime)
                    } ?? rules.maximumLifetime
            }
            if let password = mapping.optional("password") {
                rules.passwordRequired =
                    attempt { () throws(YAMLError) in try password.choice(["required", "optional"]) == "required" }
                    ?? false
            }
            if let list = mapping.optional("email_domains"),
                let elements = attempt({ () throws(YAMLError) in try list.list() })
            {
                for element in elements {
                    let domain = attempt { () throws(YAMLError) in
                        let text = try element.nonEmptyString()
                        do throws(MailAddressError) {
                            return try MailAddress.domain(text)
                        } catch {
                            throw element.error("\"\(text)\" is not a mail domain: \(error.reason)")
                        }
                    }
                    if let domain { rules.mailDomains.insert(domain) }
                }
            }
            // Mistakes are collected with the policy's others; a policy with any is not made.
            errors += mapping.unknownKeyErrors()
            return rules
        }

        func readHelpers(_ node: YAMLNode) throws(YAMLError) -> Policy.Helpers {
            var mapping = try node.mapping()
            var helpers = Policy.Helpers()
            helpers.any = try mapping.optional("any")?.bool() ?? false
            if let groups = mapping.optional("groups") { helpers.groups = Set(readDNs(groups, naming: .operatorGroup)) }
            errors += mapping.unknownKeyErrors()
            guard helpers.any || !helpers.groups.isEmpty || mapping.contains("groups") else {
                throw node.error("names no helpers: set groups, or any: true")
            }
            if helpers.any && !helpers.groups.isEmpty {
                throw node.error("any: true already includes every helper; remove groups or any")
            }
            return helpers
        }

        func readTargets(_ node: YAMLNode) throws(YAMLError) -> Policy.Targets {
            var mapping = try node.mapping()
            var targets = Policy.Targets()
            targets.any = try mapping.optional("any")?.bool() ?? false
            if let list = mapping.optional("ous") {
                (targets.organizationalUnits, targets.oneLevelUnits) = readUnits(list)
            }
            if let list = mapping.optional("groups") { targets.groups = Set(readDNs(list, naming: .computerGroup)) }
            if let list = mapping.optional("machines") { targets.machines = readMachines(list) }
            let exceptNode = mapping.optional("except")
            errors += mapping.unknownKeyErrors()
            let named =
                !targets.organizationalUnits.isEmpty || !targets.oneLevelUnits.isEmpty || !targets.groups.isEmpty
                || !targets.machines.isEmpty
            let listed = mapping.contains("ous") || mapping.contains("groups") || mapping.contains("machines")
            guard targets.any || named || listed else {
                throw node.error("names no machines: set ous, groups or machines, or any: true")
            }
            guard targets.any || named else {
                throw node.error("the lists are empty, so the policy is about no machine")
            }
            if let exceptNode {
                targets.except = attempt { () throws(YAMLError) in try readExclusions(exceptNode) } ?? .init()
            }
            return targets
        }

        /// `except:` — OUs (either scope), computer groups and machines that the policy is not about.
        func readExclusions(_ node: YAMLNode) throws(YAMLError) -> Policy.Exclusions {
            var mapping = try node.mapping()
            var exclusions = Policy.Exclusions()
            if let list = mapping.optional("ous") {
                (exclusions.organizationalUnits, exclusions.oneLevelUnits) = readUnits(list)
            }
            if let list = mapping.optional("groups") {
                exclusions.groups = Set(readDNs(list, naming: .computerGroup))
            }
            if let list = mapping.optional("machines") { exclusions.machines = readMachines(list) }
            var mistakes: [YAMLError] = []
            // Checked before it is read, so other mistakes do not list it among the settings allowed here.
            if mapping.contains("any"), let any = mapping.optional("any") {
                mistakes.append(any.error("a policy cannot leave out every machine; remove any, or the policy"))
            }
            mistakes += mapping.unknownKeyErrors()
            // A mistaken key is the mistake, not that nothing is left out.
            errors += mistakes
            guard
                !mistakes.isEmpty || !exclusions.isEmpty || mapping.contains("ous") || mapping.contains("groups")
                    || mapping.contains("machines")
            else {
                throw node.error("leaves out nothing: set ous, groups or machines, or remove except")
            }
            return exclusions
        }

        /// A list of OUs: each a DN (the whole subtree), or `{dn: …, scope: one}` for the computers directly in it
        /// (`scope: subtree` is the default).
        func readUnits(_ node: YAMLNode) -> (subtree: [DistinguishedName], oneLevel: [DistinguishedName]) {
            guard let elements = attempt({ () throws(YAMLError) in try node.list() }) else { return ([], []) }
            var units: (subtree: [DistinguishedName], oneLevel: [DistinguishedName]) = ([], [])
            for element in elements {
                guard element.isMapping else {
                    if let dn = readDN(element, naming: .organizationalUnit) { units.subtree.append(dn) }
                    continue
                }
                let read = attempt { () throws(YAMLError) -> (DistinguishedName?, Bool) in
                    var mapping = try element.mapping()
                    let dnNode = try mapping.required("dn")
                    let scope = try mapping.optional("scope")?.choice(["subtree", "one"])
                    let oneLevel = scope == "one"
                    try mapping.rejectUnknownKeys()
                    return (readDN(dnNode, naming: .organizationalUnit), oneLevel)
                }
                guard let (dn, oneLevel) = read, let dn else { continue }
                if oneLevel { units.oneLevel.append(dn) } else { units.subtree.append(dn) }
            }
            return units
        }

        func readMachines(_ node: YAMLNode) -> Set<String> {
            guard let elements = attempt({ () throws(YAMLError) in try node.list() }) else { return [] }
            var machines: Set<String> = []
            for element in elements {
                if let name = attempt({ () throws(YAMLError) in try element.nonEmptyString() }) {
                    machines.insert(name.lowercased())
                }
            }
            return machines
        }

        func readSchedule(_ node: YAMLNode) throws(YAMLError) -> Schedule {
            var mapping = try node.mapping()
            let zoneNode = try mapping.required("timezone")
            let zoneName = try zoneNode.nonEmptyString()
            guard let timeZone = timeZones[zoneName] ?? TimeZone(identifier: zoneName),
                zoneName.contains("/") || zoneName == "UTC" || zoneName == "GMT"
            else {
                throw zoneNode.error("unknown time zone \"\(zoneName)\"; use an IANA name such as Europe/Berlin or UTC")
            }
            let daysNode = try mapping.required("days")
            var days: Set<Schedule.Day> = []
            for element in try daysNode.list() {
                let day = try element.choice(Schedule.Day.allCases.map(\.rawValue))
                guard let value = Schedule.Day(rawValue: day), days.insert(value).inserted else {
                    throw element.error("\(day) is listed twice")
                }
            }
            guard !days.isEmpty else { throw daysNode.error("lists no days") }
            let hoursNode = try mapping.required("hours")
            let hours = try hoursNode.string()
            let parts = hours.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let start = Self.minutes(parts[0]), let end = Self.minutes(parts[1]) else {
                throw hoursNode.error("expected a window such as 07:00-19:00 (24-hour clock), found \"\(hours)\"")
            }
            guard start != end else { throw hoursNode.error("the window is empty; for all day use 00:00-24:00") }
            try mapping.rejectUnknownKeys()
            timeZones[zoneName] = timeZone
            return Schedule(timeZone: timeZone, days: days, startMinute: start, endMinute: end)
        }

        static func minutes(_ text: Substring) -> Int? {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]),
                let minutes = Int(parts[1]), (0...24).contains(hours), (0...59).contains(minutes),
                hours < 24 || minutes == 0
            else { return nil }
            return hours * 60 + minutes
        }

        static let nameCharacters = Set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.".unicodeScalars)
        static let consentKeys: Set<String> = [
            "consent", "require_consent", "skip_consent", "auto_accept", "accept", "unattended", "no_consent",
        ]
    }
}

/// Every mistake in a policy set.
public struct PolicyErrors: Error, Sendable, CustomStringConvertible {
    /// The mistakes, in file order.
    public var errors: [YAMLError]

    /// One line per mistake.
    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
