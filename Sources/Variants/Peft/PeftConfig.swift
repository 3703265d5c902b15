import Foundation
import LoRABenchAdapters
import LoRABenchTensorIO

/// peft's `adapter_config.json`: every field as JSON, with typed look-ups that fail naming the
/// file and the key. The fields every peft method writes have properties here; each variant's
/// codec reads and writes its own (`r`, `lora_alpha`, `init_r`, `d_initial`, …). Written with
/// sorted keys, as peft does.
public struct PeftConfig: Sendable, Equatable {
    public var fields: [String: JSONValue]
    /// The file it was read from, for errors ("adapter_config.json" for a config built in memory).
    public var path: String

    public static let fileName = "adapter_config.json"
    /// The peft version whose layout LoRABench writes and is tested against.
    public static let peftVersion = "0.21.2"

    /// A config with the fields every peft method writes, for a model with no task head type
    /// (`task_type: null`, so peft records the base class in `auto_mapping`).
    public init(peftType: String, targetModules: [String]) {
        fields = [
            "peft_type": .string(peftType), "target_modules": .strings(targetModules), "bias": .string(BiasMode.none.rawValue),
            "fan_in_fan_out": .bool(false), "inference_mode": .bool(true), "modules_to_save": .null, "task_type": .null,
            "base_model_name_or_path": .null, "revision": .null, "layers_to_transform": .null, "layers_pattern": .null,
            "peft_version": .string(Self.peftVersion),
            "auto_mapping": .object(["base_model_class": .string("BertModel"),
                                     "parent_library": .string("transformers.models.bert.modeling_bert")]),
        ]
        path = Self.fileName
    }

    public subscript(key: String) -> JSONValue? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    public static func == (lhs: PeftConfig, rhs: PeftConfig) -> Bool { lhs.fields == rhs.fields }

    // MARK: Fields every method has

    public var peftType: String { (try? string("peft_type")) ?? "" }

    public var targetModules: [String] { (try? strings("target_modules")) ?? [] }

    public var modulesToSave: [String]? {
        get { try? strings("modules_to_save") }
        set { fields["modules_to_save"] = newValue.map(JSONValue.strings) ?? .null }
    }

    public var baseModelNameOrPath: String? {
        get { try? string("base_model_name_or_path") }
        set { fields["base_model_name_or_path"] = newValue.map(JSONValue.string) ?? .null }
    }

    /// The model a checkpoint was trained on, for errors.
    public var modelName: String { baseModelNameOrPath ?? "an unnamed base model" }

    // MARK: Typed look-ups (nil when absent or null)

    public func string(_ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case let .string(value)?: return value
        case let other?: throw invalid(key, "found \(other.summary), expected a string")
        }
    }

    public func int(_ key: String) throws -> Int? {
        switch fields[key] {
        case nil, .null?: return nil
        case let .int(value)?: return value
        case let other?: throw invalid(key, "found \(other.summary), expected an integer")
        }
    }

    public func number(_ key: String) throws -> Double? {
        switch fields[key] {
        case nil, .null?: return nil
        case let .int(value)?: return Double(value)
        case let .number(value)?: return value
        case let other?: throw invalid(key, "found \(other.summary), expected a number")
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case let .bool(value)?: return value
        case let other?: throw invalid(key, "found \(other.summary), expected true or false")
        }
    }

    /// A list of strings, or a single string as a one-element list (peft accepts both).
    public func strings(_ key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case let .string(value)?: return [value]
        case let .array(values)?:
            return try values.map { value in
                guard case let .string(text) = value else { throw invalid(key, "found \(value.summary) in the list, expected strings") }
                return text
            }
        case let other?: throw invalid(key, "found \(other.summary), expected a list of strings")
        }
    }

    /// An object's entries (nil when absent or null).
    public func object(_ key: String) throws -> [String: JSONValue]? {
        switch fields[key] {
        case nil, .null?: return nil
        case let .object(value)?: return value
        case let other?: throw invalid(key, "found \(other.summary), expected an object")
        }
    }

    public func invalid(_ key: String, _ reason: String) -> CheckpointError {
        CheckpointError.invalidConfig(path: path, key: key, reason: reason)
    }

    // MARK: Files

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(fields), to: path)
    }

    public init(contentsOf path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CheckpointError.unreadable(path: path, reason: error.localizedDescription)
        }
        guard case let .object(fields)? = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw CheckpointError.invalidConfig(path: path, key: "", reason: "not a JSON object")
        }
        self.fields = fields
        self.path = path
        guard try string("peft_type") != nil else { throw invalid("peft_type", "missing") }
        guard try strings("target_modules") != nil else { throw invalid("target_modules", "missing") }
    }
}
