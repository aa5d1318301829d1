import OrderedCollections

/// A JSON document as a value. Objects keep their keys in insertion order so that what tether
/// writes (control responses, events, upstream messages) reads the way it was built.
///
/// tether parses and prints JSON itself (see `JSONParser` and `JSONWriter`) instead of going
/// through Foundation: every byte from a control client or the upstream is untrusted, and this
/// parser is bounded in depth and size, never traps, and allocates only what the document holds.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    /// The number as an exact integer, or nil when it has a fraction or is out of range.
    public var intValue: Int? {
        guard case .number(let n) = self, n.rounded() == n, abs(n) < 9.0e15 else { return nil }
        return Int(n)
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// An ordered JSON object with hashed keys: a lookup or insertion is O(1), so parsing an object
/// is linear in its size whatever its shape. (Lookups were linear once: one upstream frame with
/// 100,000 keys held the event loop for 37 s.)
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    private var storage: OrderedDictionary<String, JSONValue>

    public init() { storage = [:] }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        storage = [:]
        for (k, v) in elements { self[k] = v }
    }

    public init(_ pairs: [(String, JSONValue)]) {
        storage = [:]
        for (k, v) in pairs { self[k] = v }
    }

    /// Setting an existing key keeps its place; setting nil removes it.
    public subscript(key: String) -> JSONValue? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    public var entries: [(key: String, value: JSONValue)] { storage.elements.map { ($0.key, $0.value) } }
    public var keys: [String] { Array(storage.keys) }
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    public func makeIterator() -> OrderedDictionary<String, JSONValue>.Iterator {
        storage.makeIterator()
    }

    /// Keys of `other` replace or extend ours; nested objects merge recursively.
    public func merging(_ other: JSONObject) -> JSONObject {
        var result = self
        for (key, value) in other {
            if case .object(let mine)? = result[key], case .object(let theirs) = value {
                result[key] = .object(mine.merging(theirs))
            } else {
                result[key] = value
            }
        }
        return result
    }

    /// Equal when the same keys hold equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (key, value) in lhs.storage where rhs.storage[key] != value { return false }
        return true
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }

    public init(_ int: Int) { self = .number(Double(int)) }
    public init(_ string: String?) { self = string.map { .string($0) } ?? .null }
}
