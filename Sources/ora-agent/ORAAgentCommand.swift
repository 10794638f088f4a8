import ArgumentParser
import ORAAgent

@main
struct ORAAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ora-agent",
        abstract: "The ora agent on a domain machine: enrolls with the server and asks the person at the machine "
            + "before anyone may see or control it.",
        version: AgentInfo.version
    )
}
