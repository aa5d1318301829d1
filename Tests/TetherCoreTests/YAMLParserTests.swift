import Testing
@testable import TetherCore

/// The document tree built from libyaml's events, and what the parser refuses.
@Suite struct YAMLParserTests {
    static func parse(_ text: String, limits: YAMLParser.Limits = .init()) throws(YAMLError) -> YAMLNode? {
        try YAMLParser.parse(Array(text.utf8), limits: limits)
    }

    static func refusal(_ text: String, limits: YAMLParser.Limits = .init()) -> YAMLError? {
        do {
            _ = try parse(text, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func treeWithOneBasedLines() throws {
        let root = try #require(try Self.parse("""
            # comment
            a: 1
            b:
              - x
              - 'y'
            c: { d: "e" }
            """))
        guard case .mapping(let pairs, let line) = root else { Issue.record("not a mapping: \(root)"); return }
        #expect(line == 2)
        #expect(pairs.map(\.key.text) == ["a", "b", "c"])
        #expect(pairs.map(\.key.line) == [2, 3, 6])
        #expect(pairs[0].value.line == 2)
        guard case .sequence(let items, let seqLine) = pairs[1].value else { Issue.record("b is not a sequence"); return }
        #expect(seqLine == 4)
        guard case .scalar(let x) = items[0], case .scalar(let y) = items[1] else { Issue.record("items are not scalars"); return }
        #expect(x == YAMLScalar(text: "x", style: .plain, line: 4))
        #expect(y == YAMLScalar(text: "y", style: .quoted, line: 5))
        guard case .mapping(let inner, 6) = pairs[2].value, case .scalar(let e) = inner[0].value else {
            Issue.record("c is not a mapping on line 6"); return
        }
        #expect(e.style == .quoted && e.text == "e")
    }

    @Test func blockScalarsAreQuotedStrings() throws {
        let root = try #require(try Self.parse("a: |\n  true\nb: >\n  1\n"))
        guard case .mapping(let pairs, _) = root, case .scalar(let a) = pairs[0].value, case .scalar(let b) = pairs[1].value else {
            Issue.record("unexpected tree \(root)"); return
        }
        #expect(a.value == .string("true\n") && b.value == .string("1\n"))
    }

    @Test func emptyStreamsHaveNoDocument() throws {
        #expect(try Self.parse("") == nil)
        #expect(try Self.parse("# only a comment\n\n") == nil)
        #expect(try Self.parse("---\n")?.isNull == true)
        #expect(try Self.parse("%YAML 1.2\n---\na: 1\n") != nil)
        #expect(try Self.parse("a: 1\n...\n") != nil)
    }

    @Test func duplicateKeysNameTheKeyAndBothLines() {
        let top = Self.refusal("a: 1\nb: 2\na: 3\n")
        #expect(top == YAMLError(line: 3, key: "a", message: "appears more than once (first on line 1)"))
        let nested = Self.refusal("link:\n  grace: 1s\n  backoff: {max: 1s, max: 2s}\n")
        #expect(nested?.key == "link.backoff.max" && nested?.line == 3)
        let inList = Self.refusal("tools:\n  - name: a\n  - name: b\n    name: c\n")
        #expect(inList?.key == "tools[1].name" && inList?.line == 4)
        // Keys compare by text: a YAML 1.2 int 1 and a string "1" are one key here.
        #expect(Self.refusal("1: a\n\"1\": b\n")?.key == "1")
    }

    @Test func aliasesAnchorsAndTagsAreRefused() {
        #expect(Self.refusal("a: &x 1\nb: 2\n")?.message.contains("anchors (&x) are not supported") == true)
        #expect(Self.refusal("a: *x\n")?.message.contains("aliases (*x) are not supported") == true)
        #expect(Self.refusal("a: &m {b: 1}\n")?.line == 1)
        #expect(Self.refusal("a: !!str 1\n")?.message.contains("tags (!!str)") == true)
        #expect(Self.refusal("a: !custom x\n")?.message.contains("tags (!custom)") == true)
        #expect(Self.refusal("a: !!seq [1]\n") != nil)
    }

    @Test func onlyYAML12DirectivesAreAccepted() {
        let error = Self.refusal("%YAML 1.1\n---\na: yes\n")
        #expect(error?.message.contains("tether reads YAML 1.2") == true)
        #expect(error?.line == 1)
    }

    @Test func aSecondDocumentIsRefused() {
        let error = Self.refusal("a: 1\n---\nb: 2\n")
        #expect(error?.line == 2)
        #expect(error?.message.contains("second document") == true)
    }

    @Test func keysMustBeScalars() {
        #expect(Self.refusal("? [a, b]\n: 1\n")?.message.contains("mapping key must be a single value") == true)
        #expect(Self.refusal("{[a]: 1}\n") != nil)
    }

    @Test func nestingIsBounded() throws {
        func nested(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        #expect(try Self.parse(nested(64)) != nil)
        let error = Self.refusal(nested(65))
        #expect(error?.message == "nested deeper than 64 levels")
        #expect(Self.refusal(nested(3), limits: .init(maxDepth: 2)) != nil)
        // Block mappings count the same way.
        var block = ""
        for level in 0..<65 { block += String(repeating: " ", count: level) + "k:\n" }
        #expect(Self.refusal(block)?.line == 65)
    }

    @Test func valuesAreCounted() throws {
        #expect(try Self.parse("[1, 2, 3]", limits: .init(maxNodes: 4)) != nil)
        #expect(Self.refusal("[1, 2, 3, 4]", limits: .init(maxNodes: 4))?.message == "more than 4 values")
        // Keys count too.
        #expect(Self.refusal("{a: 1, b: 2}", limits: .init(maxNodes: 4)) != nil)
    }

    @Test func syntaxErrorsHaveTheirLine() {
        let error = Self.refusal("a: 1\nb: [\n")
        #expect(error?.line != nil && error?.key == nil)
        let tab = Self.refusal("a:\n\tb: 1\n")
        #expect(tab?.line == 2, "\(String(describing: tab))")
    }

    @Test func invalidUTF8IsRefusedWithItsLine() {
        var bytes = Array("a: 1\nb: 2\nc: ".utf8)
        bytes += [0xFF, 0xFE]
        bytes += Array("\n".utf8)
        #expect(throws: YAMLError.self) { try YAMLParser.parse(bytes) }
        do {
            _ = try YAMLParser.parse(bytes)
        } catch {
            #expect(error.line == 3, "\(error)")
        }
        // A truncated sequence and a NUL byte, too.
        #expect(throws: YAMLError.self) { try YAMLParser.parse(Array("a: ".utf8) + [0xC3]) }
        #expect(throws: YAMLError.self) { try YAMLParser.parse(Array("a: b".utf8) + [0x00]) }
    }
}
