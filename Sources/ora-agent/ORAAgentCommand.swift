import ArgumentParser
import Foundation
import Logging
import ORAAgent

@main
struct ORAAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ora-agent",
        abstract: "The ora agent on a domain machine: enrolls with the server and asks the person at the machine "
            + "before anyone may see or control it.",
        version: AgentInfo.version,
        subcommands: [Enroll.self, Run.self, Doctor.self, Invite.self, Invitations.self, Ask.self]
    )
}

/// Where the agent keeps its device key and enrollment.
struct StateOption: ParsableArguments {
    @Option(name: .long, help: "The agent's state directory (device key and enrollment).")
    var stateDir: String = "/var/lib/ora-agent"
}

/// Prints an error for the administrator and exits with the error's code.
func fail(_ error: AgentError) -> ExitCode {
    FileHandle.standardError.write(Data("ora-agent: error: \(error.description)\n".utf8))
    return ExitCode(error.exitCode)
}

extension ORAAgentCommand {
    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enroll this machine with an ora server, using a one-time token from an administrator.",
            discussion: """
                Makes a new device key (kept in the state directory, mode 0600, never sent), and sends its public \
                half with the machine's name. The server accepts only a name that is a computer object in the \
                directory. Enrolling again replaces the key.
                """)

        @Option(help: "The ora server's URL (https://, or http:// to this machine only).") var server: String
        @Option(help: "The one-time enrollment token; '-' reads it from standard input.") var token: String
        @Option(help: "The machine's name in the directory (default: this host's name).") var machine: String?
        @Option(help: "A CA file to verify the server's certificate with.") var caFile: String?
        @OptionGroup var state: StateOption

        func run() async throws {
            let secret =
                token == "-"
                ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                : token
            let name = machine ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
            do throws(AgentError) {
                let enroller = try Enroller(server: server, machine: name, caFile: caFile)
                let enrolled = try await enroller.enroll(token: secret, state: AgentState(directory: state.stateDir))
                print("enrolled as \(enrolled) with \(enroller.server); the device key is in \(state.stateDir)")
            } catch {
                throw fail(error)
            }
        }
    }
}

extension ORAAgentCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stay connected to the server and ask the person at this machine about every offer.",
            discussion: """
                Every offer and every control request is a question for the person at the machine; there is no \
                way to answer on their behalf. --consent chooses how they are asked: terminal (this terminal), \
                desktop (a dialog on the X11 display, with zenity) or command (a program of yours that gets the \
                question as JSON on standard input and prints yes to allow). Once the person accepts, the session \
                is shown to them until it ends — who helps, what they can do now, Stop control, End session and \
                the chat: in this terminal (terminal), or in the session window ora-agent-window (desktop).
                """)

        enum Provider: String, ExpressibleByArgument, CaseIterable {
            case terminal, desktop, command
        }

        @Option(help: "How the person at the machine is asked: terminal, desktop or command.")
        var consent: Provider = .terminal
        @Option(help: "With --consent command: the program to run for each question.") var consentCommand: String?
        @Option(
            help: ArgumentHelp(
                "With --consent desktop: the session window program.",
                discussion: "Default: ora-agent-window beside this program, else /usr/lib/ora-agent/ora-agent-window.",
                valueName: "path"))
        var windowProgram: String?
        @Option(help: "The X11 display whose screen the helper sees (default: $DISPLAY, else :0).")
        var display: String?
        @Option(
            help: ArgumentHelp(
                "The program that serves the screen over RFB on its standard input and output, with its arguments.",
                discussion: "Default: x11vnc -inetd -display DISPLAY -nopw -q -norc -nossl. Split on spaces.",
                valueName: "command"))
        var screenCommand: String?
        @Option(help: "Log level: debug, info, notice, warning, error.") var logLevel: String = "notice"
        @OptionGroup var state: StateOption

        func validate() throws {
            if display != nil, screenCommand != nil {
                throw ValidationError("--display goes with the default screen backend, not with --screen-command")
            }
            if let screenCommand, screenCommand.split(separator: " ").isEmpty {
                throw ValidationError("--screen-command needs a program")
            }
            if consent == .command, consentCommand == nil {
                throw ValidationError("--consent command needs --consent-command PROGRAM")
            }
            if consent != .command, consentCommand != nil {
                throw ValidationError("--consent-command goes with --consent command")
            }
            if consent != .desktop, windowProgram != nil {
                throw ValidationError("--window-program goes with --consent desktop")
            }
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("--log-level takes debug, info, notice, warning or error")
            }
        }

        func run() async throws {
            LoggingSystem.bootstrap(StreamLogHandler.standardError)
            // A session window that is gone fails a write to it, rather than ending the agent.
            signal(SIGPIPE, SIG_IGN)
            var logger = Logger(label: "ora-agent")
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
            let provider: any ConsentProvider =
                switch consent {
                case .terminal: TerminalConsentProvider()
                case .desktop:
                    DesktopConsentProvider(
                        windowProgram: windowProgram ?? DesktopConsentProvider.defaultWindowProgram)
                case .command: CommandConsentProvider(command: [consentCommand ?? ""])
                }
            do throws(AgentError) {
                var screen = ScreenBackend.x11vnc(
                    display: display ?? ProcessInfo.processInfo.environment["DISPLAY"] ?? ":0")
                if let screenCommand {
                    screen = try ScreenBackend(command: screenCommand.split(separator: " ").map(String.init))
                }
                let runner = try AgentRunner(
                    state: AgentState(directory: state.stateDir), consent: provider, screen: screen, logger: logger)
                try await runner.run()
            } catch {
                throw fail(error)
            }
        }
    }
}

extension ORAAgentCommand {
    struct Doctor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check everything a session needs, and say what is wrong and how to fix it.",
            discussion: """
                Checks the enrollment and its device key, the server (reachable, its certificate trusted), this \
                machine's clock against the server's, the X11 display, the screen backend (started until it \
                speaks RFB) and the way the person is asked — with the same options as ora-agent run. Exits 0 only \
                when a session would work, 1 otherwise. Run it as the user the agent runs as, in their session. \
                When the server answers, the findings are sent to it, signed with this machine's key, and its \
                administrators see the latest with `ora agents show NAME`.
                """)

        @Option(help: "How the person at the machine is asked: terminal, desktop or command.")
        var consent: Run.Provider = .terminal
        @Option(help: "With --consent command: the program to run for each question.") var consentCommand: String?
        @Option(help: "With --consent desktop: the session window program.") var windowProgram: String?
        @Option(help: "The X11 display whose screen the helper sees (default: $DISPLAY, else :0).")
        var display: String?
        @Option(help: "The program that serves the screen over RFB on its standard streams, with its arguments.")
        var screenCommand: String?
        @Flag(help: "Do not send the findings to the server.") var noReport = false
        @OptionGroup var state: StateOption

        func validate() throws {
            if consent == .command, consentCommand == nil {
                throw ValidationError("--consent command needs --consent-command PROGRAM")
            }
            if let screenCommand, screenCommand.split(separator: " ").isEmpty {
                throw ValidationError("--screen-command needs a program")
            }
        }

        func run() async throws {
            let display = display ?? ProcessInfo.processInfo.environment["DISPLAY"] ?? ":0"
            var screen = ScreenBackend.x11vnc(display: display)
            if let screenCommand,
                let custom = try? ScreenBackend(command: screenCommand.split(separator: " ").map(String.init))
            {
                screen = custom
            }
            let asking: AgentDoctor.Consent =
                switch consent {
                case .terminal: .terminal
                case .desktop: .desktop(windowProgram: windowProgram ?? DesktopConsentProvider.defaultWindowProgram)
                case .command: .command(consentCommand ?? "")
                }
            let doctor = AgentDoctor(
                state: AgentState(directory: state.stateDir), display: display, screen: screen, consent: asking)
            let findings = await doctor.examine()
            for finding in findings { print(finding.text) }
            if !noReport, let reported = await doctor.report(findings) { print(reported) }
            let failed = findings.filter { $0.verdict == .fail }.count
            if failed == 0 {
                print("a session would work")
            } else {
                print("a session would not work: \(failed) problem\(failed == 1 ? "" : "s") above")
                throw ExitCode(1)
            }
        }
    }
}
