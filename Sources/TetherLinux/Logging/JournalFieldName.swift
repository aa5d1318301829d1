/// journald field names are upper-case ASCII letters, digits and underscores, must not start
/// with an underscore or digit, and are at most 64 bytes. Logger metadata keys become
/// `TETHER_<KEY>` so they never collide with journald's own fields.
public enum JournalFieldName {
    public static func from(metadataKey key: String) -> String {
        var name = "TETHER_"
        var lastWasUnderscore = true
        for scalar in key.unicodeScalars {
            let c: Character
            switch scalar {
            case "a"..."z": c = Character(String(scalar).uppercased())
            case "A"..."Z", "0"..."9": c = Character(scalar)
            default: c = "_"
            }
            if c == "_" && lastWasUnderscore { continue }
            name.append(c)
            lastWasUnderscore = c == "_"
        }
        while name.hasSuffix("_") && name.count > 7 { name.removeLast() }
        if name == "TETHER_" { name = "TETHER_FIELD" }
        if name.hasPrefix("TETHER_TETHER_") { name = String(name.dropFirst(7)) }
        return String(name.prefix(64))
    }
}
