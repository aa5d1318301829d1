/// Names a conversation: `conv_` and 24 hex digits. Stable across upstream sessions until
/// `forget` or `conversation.max_age` starts a new one; pcm-stream brains get it in `hello`.
public enum ConversationID {
    public static func make<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = Array("conv_".utf8)
        for _ in 0..<3 {
            var word = generator.next()
            for _ in 0..<8 {
                out.append(digits[Int(word & 0xF)])
                word >>= 4
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return make(using: &generator)
    }
}
