/// Upper bounds the relay applies to lengths a peer announces in the RFB stream, so a hostile length closes the
/// stream instead of making ora allocate.
public enum RFBLimits {
    /// The longest clipboard text accepted in one ClientCutText message (1 MiB).
    public static let maximumClientCutTextLength = 1 << 20
    /// The most encodings accepted in one SetEncodings message.
    public static let maximumEncodingCount = 256
}
