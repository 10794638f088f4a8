import Foundation

extension PolicySet {
    /// The set written as one policy file, in the form the parser reads: parsing it gives the same policies and
    /// roles (where they are written aside).
    public var yaml: String {
        var text = "policies:\n"
        for policy in policies {
            text += "  - name: \(Self.quoted(policy.name))\n"
            if let description = policy.description {
                text += "    description: \(Self.quoted(description))\n"
            }
            switch policy.effect {
            case .deny: text += "    effect: deny\n"
            case .allow(let access): text += "    allow: \(access.rawValue)\n"
            }
            text += "    helpers:\n"
            if policy.helpers.any { text += "      any: true\n" }
            if !policy.helpers.groups.isEmpty || !policy.helpers.any {
                text += "      groups: \(Self.list(policy.helpers.groups.map(\.original).sorted()))\n"
            }
            text += "    targets:\n"
            if policy.targets.any { text += "      any: true\n" }
            let targets = policy.targets
            text += Self.selection(
                subtrees: targets.organizationalUnits, oneLevel: targets.oneLevelUnits, groups: targets.groups,
                machines: targets.machines, indent: "      ")
            let except = targets.except
            if !except.isEmpty {
                text += "      except:\n"
                text += Self.selection(
                    subtrees: except.organizationalUnits, oneLevel: except.oneLevelUnits, groups: except.groups,
                    machines: except.machines, indent: "        ")
            }
            if let pattern = policy.ticketPattern {
                text += "    require:\n      ticket: \(Self.quoted(pattern))\n"
            }
            if let schedule = policy.schedule {
                let days = schedule.days.sorted().map(\.rawValue).joined(separator: ", ")
                let hours = Schedule.format(schedule.startMinute) + "-" + Schedule.format(schedule.endMinute)
                text +=
                    "    schedule: {timezone: \(Self.quoted(schedule.timeZone.identifier)), days: [\(days)], "
                    + "hours: \"\(hours)\"}\n"
            }
            text += "    consent_timeout: \(policy.consentTimeout.text)\n"
            text += "    max_duration: \(policy.maximumDuration.text)\n"
            let rules = policy.invitations
            if rules != Policy.InvitationRules() {
                text += "    invitations:\n"
                text += "      answer: \(rules.answer)\n"
                if let access = rules.access { text += "      allow: \(access.rawValue)\n" }
                text += "      max_lifetime: \(rules.maximumLifetime.text)\n"
                text += "      password: \(rules.passwordRequired ? "required" : "optional")\n"
                if !rules.mailDomains.isEmpty {
                    text += "      email_domains: \(Self.list(rules.mailDomains.sorted()))\n"
                }
            }
        }
        if !roles.administrators.isEmpty || !roles.auditors.isEmpty {
            text += "roles:\n"
            text += "  administrators: \(Self.list(roles.administrators.map(\.original).sorted()))\n"
            text += "  auditors: \(Self.list(roles.auditors.map(\.original).sorted()))\n"
        }
        return text
    }

    /// A YAML double-quoted scalar: backslash and quote escaped, and every character that YAML does not allow
    /// written as it is (controls, C1 controls, U+FFFE and U+FFFF) or reads as a line break (U+0085, U+2028,
    /// U+2029) or a byte order mark (U+FEFF) written as an escape.
    static func quoted(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value):
                result += "\\x" + Hex.encode([UInt8(scalar.value)])
            case "\u{2028}", "\u{2029}", "\u{FEFF}", "\u{FFFE}", "\u{FFFF}":
                result += "\\u" + Hex.encode([UInt8(scalar.value >> 8), UInt8(scalar.value & 0xff)])
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// `ous`, `groups` and `machines` lines of targets or their `except`, the lists that are not empty.
    private static func selection(
        subtrees: [DistinguishedName], oneLevel: [DistinguishedName], groups: Set<DistinguishedName>,
        machines: Set<String>, indent: String
    ) -> String {
        var text = ""
        if !subtrees.isEmpty || !oneLevel.isEmpty {
            let units =
                subtrees.map { quoted($0.original) } + oneLevel.map { "{dn: \(quoted($0.original)), scope: one}" }
            text += indent + "ous: [" + units.joined(separator: ", ") + "]\n"
        }
        if !groups.isEmpty { text += indent + "groups: \(list(groups.map(\.original).sorted()))\n" }
        if !machines.isEmpty { text += indent + "machines: \(list(machines.sorted()))\n" }
        return text
    }

    static func list(_ values: [String]) -> String {
        "[" + values.map(quoted).joined(separator: ", ") + "]"
    }

}
