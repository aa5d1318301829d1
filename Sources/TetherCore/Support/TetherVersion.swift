/// The version tetherd and tetherctl report (`--version`, `status.version`, User-Agent).
public enum TetherVersion {
    public static let current = "0.1.0"
}
