import Foundation

/// The fields of peft's `adapter_config.json` that LoRABench reads and writes
/// (peft 0.21.2: `LoraConfig` / `AdaLoraConfig`). Written with sorted keys, as peft does.
public struct PeftConfig: Equatable, Sendable {
    public enum PeftType: String, Sendable { case lora = "LORA", adalora = "ADALORA" }

    public var peftType: PeftType
    public var rank: Int
    public var alpha: Float
    public var dropout: Float = 0
    public var targetModules: [String]
    public var bias: BiasMode = .none
    public var useRSLoRA = false
    public var useDoRA = false
    /// Per-module rank / α overrides (LoRA): regex key → value, first match in key order wins.
    public var rankPattern: [(key: String, rank: Int)] = []
    public var alphaPattern: [(key: String, alpha: Float)] = []
    /// AdaLoRA: kept triplets per module (`<module>.lora_E` → [Bool]).
    public var adaloraRankPattern: [String: [Bool]]?
    public var adalora: AdaLoRAFields?
    public var modulesToSave: [String]?
    public var baseModelNameOrPath: String?
    public var taskType: String?

    /// AdaLoRA's schedule as saved (needed by peft to load: total_step > 0, tinit < total_step − tfinal).
    public struct AdaLoRAFields: Equatable, Sendable {
        public var initialRank: Int
        public var targetRank: Int
        public var tinit: Int
        public var tfinal: Int
        public var deltaT: Int
        public var beta1: Float
        public var beta2: Float
        public var orthRegWeight: Float
        public var totalStep: Int

        public init(initialRank: Int, targetRank: Int, tinit: Int, tfinal: Int, deltaT: Int, beta1: Float, beta2: Float,
                    orthRegWeight: Float, totalStep: Int) {
            self.initialRank = initialRank
            self.targetRank = targetRank
            self.tinit = tinit
            self.tfinal = tfinal
            self.deltaT = deltaT
            self.beta1 = beta1
            self.beta2 = beta2
            self.orthRegWeight = orthRegWeight
            self.totalStep = totalStep
        }
    }

    public init(peftType: PeftType, rank: Int, alpha: Float, targetModules: [String]) {
        self.peftType = peftType
        self.rank = rank
        self.alpha = alpha
        self.targetModules = targetModules
    }

    public static func == (lhs: PeftConfig, rhs: PeftConfig) -> Bool {
        lhs.json() as NSDictionary == rhs.json() as NSDictionary
    }

    /// The rank and α of one module: the `rank_pattern` / `alpha_pattern` key whose regex
    /// `(.*\.)?(key)$` matches the module name, else the global r and α (peft's rule).
    /// peft takes the first matching key in file order, which a JSON object read back does not
    /// keep: keys that match the same module with different values are an error, not a guess.
    public func rankAndAlpha(for module: String, configPath: String = PeftCheckpoint.configFile) throws -> (rank: Int, alpha: Float) {
        func value<T: Equatable>(_ pattern: [(key: String, value: T)], _ name: String) throws -> T? {
            let matches = pattern.filter { Self.patternMatches($0.key, module) }
            guard let first = matches.first else { return nil }
            if let other = matches.first(where: { $0.value != first.value }) {
                throw CheckpointError.invalidConfig(path: configPath, key: name,
                                                    reason: "'\(first.key)' and '\(other.key)' both match \(module) with different values (\(first.value), \(other.value)); peft takes the first in file order, keep only one")
            }
            return first.value
        }
        return (try value(rankPattern.map { ($0.key, $0.rank) }, "rank_pattern") ?? rank,
                try value(alphaPattern.map { ($0.key, $0.alpha) }, "alpha_pattern") ?? alpha)
    }

    static func patternMatches(_ key: String, _ module: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$") else { return false }
        return regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil
    }

    // MARK: JSON

    public func json() -> [String: Any] {
        var json: [String: Any] = [
            "peft_type": peftType.rawValue, "r": rank, "lora_alpha": Self.number(alpha), "lora_dropout": Double(dropout),
            "target_modules": targetModules, "bias": bias.rawValue, "use_rslora": useRSLoRA, "use_dora": useDoRA,
            "lora_bias": false, "fan_in_fan_out": false, "init_lora_weights": true, "inference_mode": true,
            "modules_to_save": modulesToSave as Any? ?? NSNull(), "task_type": taskType as Any? ?? NSNull(),
            "base_model_name_or_path": baseModelNameOrPath as Any? ?? NSNull(), "revision": NSNull(),
            "layers_to_transform": NSNull(), "layers_pattern": NSNull(), "exclude_modules": NSNull(),
            "peft_version": "0.21.2",
            "rank_pattern": Dictionary(uniqueKeysWithValues: rankPattern.map { ($0.key, $0.rank) }),
            "alpha_pattern": Dictionary(uniqueKeysWithValues: alphaPattern.map { ($0.key, Self.number($0.alpha)) }),
        ]
        if taskType == nil {
            json["auto_mapping"] = ["base_model_class": "BertModel", "parent_library": "transformers.models.bert.modeling_bert"]
        }
        if let adalora {
            // AdaLoRA reads init_r; peft leaves `r` at its unused default and warns about any other value.
            json["r"] = 8
            json["rank_pattern"] = adaloraRankPattern as Any? ?? NSNull()
            json["alpha_pattern"] = [String: Any]()
            json["use_dora"] = false
            json["init_r"] = adalora.initialRank
            json["target_r"] = adalora.targetRank
            json["tinit"] = adalora.tinit
            json["tfinal"] = adalora.tfinal
            json["deltaT"] = adalora.deltaT
            json["beta1"] = Double(adalora.beta1)
            json["beta2"] = Double(adalora.beta2)
            json["orth_reg_weight"] = Double(adalora.orthRegWeight)
            json["total_step"] = adalora.totalStep
            json["loftq_config"] = [String: Any]()
        }
        return json
    }

    /// An integral α is written as an int, as peft users write it.
    static func number(_ value: Float) -> Any { value.rounded() == value ? Int(value) as Any : Double(value) as Any }

    public func write(to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: json(), options: [.sortedKeys, .prettyPrinted])
        try AtomicFile.write(data, to: path)
    }

    public init(contentsOf path: String) throws {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw CheckpointError.unreadable(path: path, reason: error.localizedDescription)
        }
        guard let json = object as? [String: Any] else { throw CheckpointError.invalidConfig(path: path, key: "", reason: "not a JSON object") }
        func value<T>(_ key: String, _ type: T.Type) throws -> T? {
            guard let raw = json[key], !(raw is NSNull) else { return nil }
            guard let typed = raw as? T else {
                throw CheckpointError.invalidConfig(path: path, key: key, reason: "found \(raw), expected \(T.self)")
            }
            return typed
        }
        guard let typeName = try value("peft_type", String.self), let type = PeftType(rawValue: typeName) else {
            throw CheckpointError.invalidConfig(path: path, key: "peft_type", reason: "must be LORA or ADALORA")
        }
        let targets: [String]
        if let list = try? value("target_modules", [String].self) {
            targets = list
        } else if let single = try value("target_modules", String.self) {
            targets = [single]
        } else {
            throw CheckpointError.invalidConfig(path: path, key: "target_modules", reason: "missing")
        }
        self.init(peftType: type, rank: try value("r", Int.self) ?? 8, alpha: Float(try value("lora_alpha", Double.self) ?? 8),
                  targetModules: targets)
        dropout = Float(try value("lora_dropout", Double.self) ?? 0)
        useRSLoRA = try value("use_rslora", Bool.self) ?? false
        useDoRA = try value("use_dora", Bool.self) ?? false
        if let biasName = try value("bias", String.self) {
            guard let mode = BiasMode(rawValue: biasName) else {
                throw CheckpointError.invalidConfig(path: path, key: "bias", reason: "\(biasName); allowed: none, all, lora_only")
            }
            bias = mode
        }
        modulesToSave = try value("modules_to_save", [String].self)
        baseModelNameOrPath = try value("base_model_name_or_path", String.self)
        taskType = try value("task_type", String.self)
        if type == .adalora {
            adaloraRankPattern = try value("rank_pattern", [String: [Bool]].self)
            let initialRank = try value("init_r", Int.self) ?? 12
            adalora = AdaLoRAFields(
                initialRank: initialRank, targetRank: try value("target_r", Int.self) ?? 8, tinit: try value("tinit", Int.self) ?? 0,
                tfinal: try value("tfinal", Int.self) ?? 0, deltaT: try value("deltaT", Int.self) ?? 1,
                beta1: Float(try value("beta1", Double.self) ?? 0.85), beta2: Float(try value("beta2", Double.self) ?? 0.85),
                orthRegWeight: Float(try value("orth_reg_weight", Double.self) ?? 0.5), totalStep: try value("total_step", Int.self) ?? 0)
        } else {
            // Sorted so that the same file always gives the same config (JSON objects lose key order).
            rankPattern = (try value("rank_pattern", [String: Int].self) ?? [:]).sorted { $0.key.count > $1.key.count }.map { ($0.key, $0.value) }
            alphaPattern = (try value("alpha_pattern", [String: Double].self) ?? [:]).sorted { $0.key.count > $1.key.count }
                .map { ($0.key, Float($0.value)) }
        }
    }
}
