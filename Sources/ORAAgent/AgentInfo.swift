/// Facts about this agent build.
public enum AgentInfo {
    /// The version the agent reports to the server when it enrolls.
    public static let version = "0.1.0"
}
