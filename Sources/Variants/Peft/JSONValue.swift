/// A JSON value, for the config fields peft writes (each variant's codec reads and writes its own).
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .int(value): try container.encode(value)
        case let .number(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(value): try container.encode(value)
        case let .object(value): try container.encode(value)
        }
    }

    /// Numbers compare by value: JSON writes 0.0 as 0, which reads back as an integer.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.int(a), .number(b)), let (.number(b), .int(a)): return Double(a) == b
        case let (.number(a), .number(b)): return a == b
        default: return false
        }
    }

    /// α and other numbers: integral values as ints, as peft users write them.
    public static func number(_ value: Float) -> JSONValue {
        value.rounded() == value && abs(value) < 1e9 ? .int(Int(value)) : .number(Double(value))
    }

    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }

    /// A short description for error messages.
    public var summary: String {
        switch self {
        case .null: return "null"
        case let .bool(value): return String(value)
        case let .int(value): return String(value)
        case let .number(value): return String(value)
        case let .string(value): return "\"\(value)\""
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}
