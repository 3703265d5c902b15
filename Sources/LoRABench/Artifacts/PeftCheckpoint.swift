import Foundation

/// A checkpoint that cannot be read or does not fit the model it is loaded onto.
public enum CheckpointError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalidConfig(path: String, key: String, reason: String)
    case missingTensor(path: String, name: String)
    case unexpectedTensors(path: String, names: [String])
    case noSuchModule(path: String, module: String, expectedModel: String)
    case wrongShape(path: String, name: String, found: [Int], expected: [Int], expectedModel: String)
    case wrongBaseModel(path: String, expectedSHA256: String, foundSHA256: String, expectedModel: String)
    case unknownBaseModel(path: String, name: String, known: [String])

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read adapter checkpoint: \(reason)"
        case let .invalidConfig(path, key, reason): return "\(path): invalid adapter_config.json key '\(key)': \(reason)"
        case let .missingTensor(path, name): return "\(path): the checkpoint has no tensor '\(name)' (peft would silently keep its init; LoRABench refuses)"
        case let .unexpectedTensors(path, names):
            return "\(path): tensors that match no adapted module: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? ", …" : "")"
        case let .noSuchModule(path, module, expected):
            return "\(path): module '\(module)' does not exist in this base model; the adapter was trained on \(expected)"
        case let .wrongShape(path, name, found, expected, model):
            return "\(path): tensor '\(name)' has shape \(found) but this base model needs \(expected); the adapter was trained on \(model)"
        case let .wrongBaseModel(path, expected, found, model):
            return "\(path): the adapter was trained on \(model) with weights sha256 \(expected), but the base model given has sha256 \(found); load it onto the model it was trained on"
        case let .unknownBaseModel(path, name, known):
            return "\(path): base_model_name_or_path is \(name), which LoRABench cannot load; known models: \(known.joined(separator: ", ")) (pass --model when the adapter was trained on one of them)"
        }
    }
}

/// peft's on-disk adapter layout: `adapter_model.safetensors` + `adapter_config.json`, with peft's
/// key names (e.g. `base_model.model.encoder.layer.0.attention.self.query.lora_A.weight`), so that
/// `PeftModel.from_pretrained` loads what LoRABench saves and LoRABench loads what peft saves.
public enum PeftCheckpoint {
    public static let weightsFile = "adapter_model.safetensors"
    public static let configFile = "adapter_config.json"
    /// The prefix of a `PeftModel` wrapping a transformers `BertModel` (PeftModel → LoraModel.model).
    public static let keyPrefix = "base_model.model."
    /// The safetensors metadata key recording which base weights the adapter was trained on.
    public static let baseSHA256Key = "lorabench_base_model_sha256"

    /// The tensors of one adapted module, by peft's key suffix, as saved.
    static func tensors(of adapter: any Adapter, keptTriplets: [Bool]?) -> [String: TensorToWrite] {
        switch adapter {
        case let layer as AdaLoRALayer:
            // peft slices A rows, Λ rows and B columns to the kept triplets on save.
            let kept = (keptTriplets ?? [Bool](repeating: true, count: layer.rank)).enumerated().filter(\.element).map(\.offset)
            return ["lora_A": TensorToWrite(layer.a.value.selectingRows(kept)),
                    "lora_B": TensorToWrite(layer.b.value.selectingColumns(kept)),
                    "lora_E": TensorToWrite(layer.e.value.selectingRows(kept))]
        case let dora as DoRA:
            return ["lora_A.weight": TensorToWrite(dora.a.value), "lora_B.weight": TensorToWrite(dora.b.value),
                    "lora_magnitude_vector": TensorToWrite(dora.magnitude.value, shape: [dora.outFeatures])]
        case let lora as LoRA:
            return ["lora_A.weight": TensorToWrite(lora.a.value), "lora_B.weight": TensorToWrite(lora.b.value)]
        default:
            preconditionFailure("no peft layout for \(type(of: adapter))")
        }
    }

    /// Writes both files into `directory` (each atomically). `extraTensors` are saved under the
    /// prefix as given (e.g. a head as `classifier.weight`, peft's `modules_to_save` layout).
    public static func save(_ adapters: [NamedAdapter], config: PeftConfig, to directory: String,
                            extraTensors: [String: TensorToWrite] = [:], baseModelSHA256: String? = nil) throws {
        var tensors: [String: TensorToWrite] = [:]
        for named in adapters {
            let kept = config.adaloraRankPattern?["\(named.name).lora_E"]
            for (suffix, tensor) in Self.tensors(of: named.adapter, keptTriplets: kept) {
                tensors["\(keyPrefix)\(named.name).\(suffix)"] = tensor
            }
            if named.adapter.base.biasIsTrainable {
                tensors["\(keyPrefix)\(named.name).base_layer.bias"] = TensorToWrite(named.adapter.base.bias.value, shape: [named.adapter.outFeatures])
            }
        }
        for (name, tensor) in extraTensors { tensors[keyPrefix + name] = tensor }
        var metadata = ["format": "pt"]
        if let baseModelSHA256 { metadata[baseSHA256Key] = baseModelSHA256 }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Safetensors.write(tensors, to: "\(directory)/\(weightsFile)", metadata: metadata)
        try config.write(to: "\(directory)/\(configFile)")
    }

    /// What a checkpoint folder holds.
    public struct Loaded {
        public var directory: String
        public var config: PeftConfig
        public var file: SafetensorsFile
        public var baseModelSHA256: String?

        /// The module names that have adapter tensors (without the prefix), sorted.
        public var modules: [String] {
            Set(file.names.compactMap { name -> String? in
                guard name.hasPrefix(PeftCheckpoint.keyPrefix) else { return nil }
                let key = name.dropFirst(PeftCheckpoint.keyPrefix.count)
                for marker in [".lora_A", ".lora_B", ".lora_E", ".lora_magnitude_vector"] {
                    if let range = key.range(of: marker) { return String(key[..<range.lowerBound]) }
                }
                return nil
            }).sorted()
        }

        var weightsPath: String { "\(directory)/\(PeftCheckpoint.weightsFile)" }
        var modelName: String { config.baseModelNameOrPath ?? "an unnamed base model" }

        func tensor(_ module: String, _ suffix: String) throws -> Matrix {
            let name = "\(PeftCheckpoint.keyPrefix)\(module).\(suffix)"
            guard file.tensors[name] != nil else { throw CheckpointError.missingTensor(path: weightsPath, name: name) }
            return try file.matrix(name)
        }

        /// Builds every adapter onto the frozen base layers that `baseLayer` returns by module name.
        /// Every tensor must be used and fit, and the base must be the one the adapter was trained on.
        public func attach(to baseLayer: (String) -> FrozenLinear?, baseModelSHA256 given: String?) throws -> [NamedAdapter] {
            if let expected = baseModelSHA256, let given, expected != given {
                throw CheckpointError.wrongBaseModel(path: weightsPath, expectedSHA256: expected, foundSHA256: given, expectedModel: modelName)
            }
            var used = Set<String>()
            var adapters: [NamedAdapter] = []
            for module in modules {
                guard let base = baseLayer(module) else {
                    throw CheckpointError.noSuchModule(path: weightsPath, module: module, expectedModel: modelName)
                }
                let adapter = try build(module, base: base)
                if let biasName = try restoreTrainedBias(module, of: adapter) { used.insert(biasName) }
                for suffix in PeftCheckpoint.tensors(of: adapter, keptTriplets: nil).keys { used.insert("\(PeftCheckpoint.keyPrefix)\(module).\(suffix)") }
                adapters.append(NamedAdapter(name: module, adapter: adapter))
            }
            let unused = file.names.filter { !used.contains($0) && !isExtra($0) }
            guard unused.isEmpty else { throw CheckpointError.unexpectedTensors(path: weightsPath, names: unused) }
            return adapters
        }

        /// A base bias trained with the adapter (`bias: lora_only`) is saved as `<module>.base_layer.bias`;
        /// returns that tensor's name when there is one.
        func restoreTrainedBias(_ module: String, of adapter: any Adapter) throws -> String? {
            let name = "\(PeftCheckpoint.keyPrefix)\(module).base_layer.bias"
            guard file.tensors[name] != nil else { return nil }
            let bias = try file.matrix(name)
            try checkShape(bias, module, "base_layer.bias", [1, adapter.outFeatures])
            adapter.base.bias.value = bias
            adapter.base.biasIsTrainable = true
            return name
        }

        func isExtra(_ name: String) -> Bool {
            (config.modulesToSave ?? []).contains { name.hasPrefix("\(PeftCheckpoint.keyPrefix)\($0).") }
        }

        func checkShape(_ m: Matrix, _ module: String, _ suffix: String, _ expected: [Int]) throws {
            guard m.shape == expected else {
                throw CheckpointError.wrongShape(path: weightsPath, name: "\(PeftCheckpoint.keyPrefix)\(module).\(suffix)",
                                                 found: m.shape, expected: expected, expectedModel: modelName)
            }
        }

        func build(_ module: String, base: FrozenLinear) throws -> any Adapter {
            switch config.peftType {
            case .adalora:
                let a = try tensor(module, "lora_A"), b = try tensor(module, "lora_B"), e = try tensor(module, "lora_E")
                try checkShape(a, module, "lora_A", [a.rows, base.inFeatures])
                try checkShape(b, module, "lora_B", [base.outFeatures, a.rows])
                try checkShape(e, module, "lora_E", [a.rows, 1])
                return try AdaLoRALayer(base: base, a: a, b: b, e: e, alpha: config.alpha,
                                        initialRank: config.adalora?.initialRank ?? a.rows)
            case .lora:
                let (rank, alpha) = try config.rankAndAlpha(for: module, configPath: "\(directory)/\(PeftCheckpoint.configFile)")
                let a = try tensor(module, "lora_A.weight"), b = try tensor(module, "lora_B.weight")
                try checkShape(a, module, "lora_A.weight", [rank, base.inFeatures])
                try checkShape(b, module, "lora_B.weight", [base.outFeatures, rank])
                let scaling = config.useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
                guard config.useDoRA else { return try LoRA(base: base, a: a, b: b, scaling: scaling) }
                let magnitude = try tensor(module, "lora_magnitude_vector")
                try checkShape(magnitude, module, "lora_magnitude_vector", [1, base.outFeatures])
                return try DoRA(base: base, a: a, b: b, magnitude: magnitude, scaling: scaling)
            }
        }
    }

    /// Reads a checkpoint folder (config and tensors; nothing is attached yet).
    public static func load(_ directory: String) throws -> Loaded {
        let config = try PeftConfig(contentsOf: "\(directory)/\(configFile)")
        let file = try SafetensorsFile(path: "\(directory)/\(weightsFile)")
        return Loaded(directory: directory, config: config, file: file, baseModelSHA256: file.metadata[baseSHA256Key])
    }
}
