import Testing
@testable import TetherCore

/// tether.yaml is YAML 1.2: how booleans, numbers, quoting and duplicate keys reach the
/// configuration, and the hint each mistake gets.
@Suite struct ConfigYAML12Tests {
    static func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try ConfigLoader.load(yaml: yaml, source: "t.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func booleansAreOnlyTrueAndFalse() throws {
        #expect(try ConfigLoader.load(yaml: "network: { watch: false }").network.watch == false)
        #expect(try ConfigLoader.load(yaml: "network: { watch: True }").network.watch == true)
        for word in ["yes", "no", "on", "off", "y", "n", "Yes", "OFF"] {
            let error = Self.error("network:\n  watch: \(word)\n")
            #expect(error?.description == "t.yaml:2: network.watch: \"\(word)\" is not true or false (YAML 1.2 reads \(word) as a string)")
        }
        #expect(Self.error("network: { watch: \"true\" }")?.message == "\"true\" is not true or false (quoted, so it is a string: remove the quotes)")
    }

    @Test func integers() throws {
        #expect(try ConfigLoader.load(yaml: "audio: { volume: 0x1F }").audio.volume == 31)
        #expect(try ConfigLoader.load(yaml: "audio: { volume: 0o17 }").audio.volume == 15)
        #expect(try ConfigLoader.load(yaml: "audio: { volume: +40 }").audio.volume == 40)
        #expect(Self.error("link:\n  buffer: { max_bytes: 1_000 }\n")?.description
            == "t.yaml:2: link.buffer.max_bytes: \"1_000\" is not a whole number (YAML 1.2 has no digit separators: write it without _)")
        #expect(Self.error("audio: { volume: \"55\" }")?.message == "\"55\" is not a whole number (quoted, so it is a string: remove the quotes)")
        #expect(Self.error("audio: { volume: 5.0 }")?.message == "\"5.0\" is not a whole number")
        #expect(Self.error("audio: { volume: 1e2 }")?.message == "\"1e2\" is not a whole number")
        #expect(Self.error("audio: { volume: 99999999999999999999 }")?.message == "99999999999999999999 is out of range (0..100)")
        #expect(Self.error("audio: { volume: 0x8C }")?.message == "140 is out of range (0..100)")
        #expect(Self.error("audio: { volume: 017 }")?.message == "\"017\" has a leading zero: write 17, or 0o17 for octal")
        #expect(try ConfigLoader.load(yaml: "audio: { volume: 0 }").audio.volume == 0)
    }

    @Test func numbers() throws {
        let link = try ConfigLoader.load(yaml: "link: { backoff: { multiplier: 3, jitter: .5 } }").link
        #expect(link.backoff.multiplier == 3 && link.backoff.jitter == 0.5)
        #expect(try ConfigLoader.load(yaml: "link: { backoff: { multiplier: 1e1 } }").link.backoff.multiplier == 10)
        #expect(Self.error("link: { backoff: { multiplier: .inf } }")?.message == ".inf is out of range (1.0..100.0)")
        #expect(Self.error("link: { backoff: { jitter: .nan } }")?.message == ".nan is out of range (0.0..1.0)")
        #expect(Self.error("link: { backoff: { multiplier: \"2\" } }")?.message == "\"2\" is not a number (quoted, so it is a string: remove the quotes)")
        #expect(Self.error("link: { backoff: { multiplier: 1,5 } }") != nil)
    }

    @Test func textKeysTakeTheTextAsWritten() throws {
        // control.mode is octal digits by its own definition, plain or quoted; YAML 1.2 alone
        // would read a plain 0660 as decimal 660.
        #expect(try ConfigLoader.load(yaml: "control: { mode: 0660 }").control.mode == 0o660)
        #expect(try ConfigLoader.load(yaml: "control: { mode: \"0640\" }").control.mode == 0o640)
        // A name that looks like a number or a YAML 1.1 bool is still a name.
        #expect(try ConfigLoader.load(yaml: "control: { group: 1000 }").control.group == "1000")
        #expect(try ConfigLoader.load(yaml: "audio: { capture: { device: on } }").audio.capture.device == "on")
    }

    @Test func sessionValuesAreYAML12AsJSON() throws {
        let session = try ConfigLoader.load(yaml: """
            upstream:
              session:
                a: on
                b: yes
                c: "true"
                d: true
                e: ~
                f: "null"
                g: 0x1F
                h: 0o17
                i: 1_000
                j: 017
                k: 1e3
                l: '0.5'
                m: [1, "1", n]
            """).upstream.session
        #expect(session["a"] == "on" && session["b"] == "yes" && session["c"] == "true" && session["d"] == .bool(true))
        #expect(session["e"] == .null && session["f"] == "null")
        #expect(session["g"] == .number(31) && session["h"] == .number(15) && session["i"] == "1_000")
        #expect(session["j"] == .number(17) && session["k"] == .number(1000) && session["l"] == "0.5")
        #expect(session["m"] == .array([.number(1), "1", "n"]))
        let infinite = Self.error("upstream:\n  session:\n    temperature: .inf\n")
        #expect(infinite?.description == "t.yaml:3: upstream.session: .inf is not a number JSON can carry")
    }

    @Test func duplicateKeysAreErrors() {
        #expect(Self.error("link:\n  grace: 1s\n  grace: 2s\n")?.description
            == "t.yaml:3: link.grace: appears more than once (first on line 2)")
        #expect(Self.error("link: {}\naudio: {}\nlink: {}\n")?.description == "t.yaml:3: link: appears more than once (first on line 1)")
        #expect(Self.error("upstream:\n  headers: { X-A: 1, X-A: 2 }\n")?.key == "upstream.headers.X-A")
    }

    @Test func anchorsAndTagsAreRefused() {
        #expect(Self.error("link:\n  grace: &g 1s\n  failed_grace: *g\n")?.description
            == "t.yaml:2: invalid YAML: anchors (&g) are not supported: write the value out")
        #expect(Self.error("audio:\n  volume: !!int \"5\"\n")?.description
            == "t.yaml:2: invalid YAML: tags (!!int) are not supported: quote a value to make it a string")
    }
}
