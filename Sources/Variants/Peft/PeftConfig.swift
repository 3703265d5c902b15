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

    /// peft's rule for a single string `target_modules`: a regular expression every adapted
    /// module's full name matches (`re.fullmatch`), or `all-linear`, every Linear but the output
    /// layer; nil for a list, whose entries name modules (`query` matches `….query`).
    public var targetModulesPattern: String? {
        if case let .string(pattern)? = fields["target_modules"] { return pattern }
        return nil
    }

    /// Whether `targetModulesPattern` selects `module` as peft decides it. An invalid regular
    /// expression is an error naming it.
    public func targetModulesPatternMatches(_ module: String) throws -> Bool {
        guard let pattern = targetModulesPattern else { return false }
        if pattern == Self.allLinear { return true }
        let regex: NSRegularExpression
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw invalid("target_modules", "'\(pattern)' is a string, which peft reads as a regular expression, and it is not a valid one")
        }
        let whole = NSRange(module.startIndex..., in: module)
        return regex.firstMatch(in: module, options: [.anchored], range: whole).map { $0.range == whole } ?? false
    }

    /// peft's `target_modules` value for every Linear layer but the output one.
    public static let allLinear = "all-linear"

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

    /// An integer in `range`, else an error saying what is `allowed`.
    public func int(_ key: String, allowed: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = try int(key) else { return nil }
        guard range.contains(value) else { throw invalid(key, "found \(value); allowed: \(allowed)") }
        return value
    }

    /// A number that `isValid` accepts, else an error saying what is `allowed`.
    public func number(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> Double? {
        guard let value = try number(key) else { return nil }
        guard isValid(value) else { throw invalid(key, "found \(value); allowed: \(allowed)") }
        return value
    }

    /// What peft's α (`lora_alpha`, an `alpha_pattern` value) may be: finite as a Float and small
    /// enough that α/r times a trained B·A stays far from Float's range (peft accepts any
    /// number, and 1e300 or -1e30 turned every output into NaN).
    public static let alphaAllowed = "a finite number between -1e6 and 1e6 (α is usually r to 4r)"
    public static func isValidAlpha(_ value: Double) -> Bool { value.isFinite && abs(value) <= 1e6 }

    /// `lora_alpha`, checked with `isValidAlpha`.
    public var alpha: Float? {
        get throws { try number("lora_alpha", allowed: Self.alphaAllowed, where: Self.isValidAlpha).map(Float.init) }
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
            throw CheckpointError.unreadable(path: path, reason: FileOperationError(operation: "read", path: path, underlying: error).reason)
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw CheckpointError.unreadable(path: path, reason: "the file is not valid JSON (\(Self.parserMessage(data)))")
        }
        guard case let .object(fields) = value else {
            throw CheckpointError.unreadable(path: path, reason: "the file holds \(value.summary), not a JSON object of peft's config fields")
        }
        self.fields = fields
        self.path = path
        guard try string("peft_type") != nil else { throw invalid("peft_type", "missing") }
        guard try strings("target_modules") != nil else { throw invalid("target_modules", "missing") }
    }

    /// What the JSON parser says about `data`, with the line and column: JSONDecoder only says
    /// "not valid JSON", JSONSerialization says "Invalid value around character 34.", counted
    /// in bytes from the start.
    private static func parserMessage(_ data: Data) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: data)
            return "a value JSON allows but no Swift number holds"
        } catch {
            let detail = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)")
                .trimmingCharacters(in: CharacterSet(charactersIn: ". "))
            guard let range = detail.range(of: "character "), let offset = Int(detail[range.upperBound...].prefix { $0.isNumber }),
                  offset <= data.count else { return detail }
            let before = data.prefix(offset)
            let line = before.count { $0 == UInt8(ascii: "\n") } + 1
            let column = offset - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
            return "\(detail): line \(line), column \(column)"
        }
    }
}
