import Foundation
import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchVariants

/// peft's on-disk adapter layout: `adapter_model.safetensors` + `adapter_config.json`, with peft's
/// key names (e.g. `base_model.model.encoder.layer.0.attention.self.query.lora_A.weight`), so that
/// `PeftModel.from_pretrained` loads what LoRABench saves and LoRABench loads what peft saves.
/// What goes into the files is each variant's codec (`AdapterPlan.peftAdapter`, `PeftCodec`);
/// this type only reads and writes the folder.
public enum PeftCheckpoint {
    public static let weightsFile = "adapter_model.safetensors"
    public static let configFile = PeftConfig.fileName
    /// The prefix of a module's keys (PeftModel → tuner model → the base model's own names).
    public static let keyPrefix = PeftAdapter.modulePrefix
    /// The safetensors metadata key recording how the base held its weights in training (`fp32`,
    /// `nf4`: `BaseWeightFormat`); absent in adapters saved before QLoRA, which trained on float32.
    public static let baseWeightsKey = "base_weights"

    /// The safetensors metadata key recording which base weights the adapter was trained on.
    public static let baseSHA256Key = "lorabench_base_model_sha256"

    /// Writes both files into `directory` (each atomically). `extraTensors` are saved under the
    /// module prefix as given (a head as `classifier.weight`, peft's `modules_to_save` layout).
    /// `metadata` goes into the weights file's header (a run's records how the base held its
    /// weights, `baseWeightsKey`, which `AdaptedModel` then restores).
    public static func save(_ adapter: PeftAdapter, to directory: String, extraTensors: [String: TensorToWrite] = [:],
                            baseModelSHA256: String? = nil, metadata: [String: String] = ["format": "pt"]) throws {
        var tensors = adapter.tensors
        for (name, tensor) in extraTensors { tensors[keyPrefix + name] = tensor }
        var metadata = metadata
        if let baseModelSHA256 { metadata[baseSHA256Key] = baseModelSHA256 }
        try FileSystem.createDirectory(directory)
        try Safetensors.write(tensors, to: "\(directory)/\(weightsFile)", metadata: metadata)
        try adapter.config.write(to: "\(directory)/\(configFile)")
    }

    /// What a checkpoint folder holds.
    public struct Loaded {
        public var directory: String
        public var config: PeftConfig
        public var file: SafetensorsFile
        public var baseModelSHA256: String?
        /// The variant that reads it.
        public var codec: any PeftCodec.Type

        public var weightsPath: String { "\(directory)/\(PeftCheckpoint.weightsFile)" }
        public var modelName: String { config.modelName }

        /// The module names that have adapter tensors (without the prefix), sorted.
        public var modules: [String] {
            let markers = codec.moduleMarkers
            return Set(file.names.compactMap { name -> String? in
                guard name.hasPrefix(PeftCheckpoint.keyPrefix) else { return nil }
                let key = name.dropFirst(PeftCheckpoint.keyPrefix.count)
                for marker in markers {
                    if let range = key.range(of: marker) { return String(key[..<range.lowerBound]) }
                }
                return nil
            }).sorted()
        }

        /// Builds every adapter onto the frozen base layers that `baseLayer` returns by module name.
        /// Every tensor must be used and fit, and the base must be the one the adapter was trained on.
        /// NaN or infinite values are refused, naming the tensor, unless `allowNonFinite` (forensics of a diverged run).
        public func attach(to baseLayer: (String) -> FrozenLinear?, baseModelSHA256 given: String?,
                           allowNonFinite: Bool = false) throws -> [NamedAdapter] {
            if let expected = baseModelSHA256, let given, expected != given {
                throw CheckpointError.wrongBaseModel(path: weightsPath, expectedSHA256: expected, foundSHA256: given, expectedModel: modelName)
            }
            let tensors = PeftTensors(config: config, file: file, path: weightsPath, allowsNonFinite: allowNonFinite)
            let modules = modules
            let found = "modules there: \(modules.isEmpty ? "none" : modules.joined(separator: ", "))"
            if let pattern = config.targetModulesPattern {
                // A string is a regular expression every adapted module's name matches in full
                // (peft's re.fullmatch): a module it does not match would not be adapted by peft.
                guard !modules.isEmpty else {
                    throw config.invalid("target_modules", "'\(pattern)' (a regular expression, as peft reads a string) selects no module with adapter tensors in \(weightsPath) (\(found))")
                }
                if let unmatched = try modules.first(where: { try !config.targetModulesPatternMatches($0) }) {
                    throw config.invalid("target_modules", "'\(pattern)' is a string, which peft reads as a regular expression matching whole module names, and it does not match \(unmatched), which has adapter tensors in \(weightsPath) (\(found))")
                }
            } else {
                // peft matches a listed target to a module whose name is it or ends in ".<target>";
                // a target matching nothing in the file means the config and the tensors disagree,
                // unless it names a module of a layer `layers_to_transform` leaves out.
                let layers = try PeftSelection.layersToTransform(config)
                for target in config.targetModules where !modules.contains(where: { $0 == target || $0.hasSuffix("." + target) }) {
                    if let layers, let layer = ModuleShape.layerIndex(in: target), !layers.contains(layer) { continue }
                    throw config.invalid("target_modules", "'\(target)' names no module with adapter tensors in \(weightsPath) (\(found))")
                }
            }
            var adapters: [NamedAdapter] = []
            for module in modules {
                guard let base = baseLayer(module) else {
                    throw CheckpointError.noSuchModule(path: weightsPath, module: module, expectedModel: modelName)
                }
                do {
                    let adapter = try codec.adapter(for: module, base: base, from: tensors)
                    try restoreTrainedBias(module, of: adapter, from: tensors)
                    adapters.append(NamedAdapter(name: module, adapter: adapter))
                } catch let error as AdapterError {
                    throw CheckpointError.invalidConfig(path: weightsPath, key: module, reason: error.description)
                }
            }
            let unused = file.names.filter { !tensors.used.contains($0) && !isExtra($0) }
            guard unused.isEmpty else { throw CheckpointError.unexpectedTensors(path: weightsPath, names: unused) }
            return adapters
        }

        /// A base bias trained with the adapter (`bias: lora_only`) is saved as `<module>.base_layer.bias`.
        func restoreTrainedBias(_ module: String, of adapter: any Adapter, from tensors: PeftTensors) throws {
            guard tensors.contains("\(PeftCheckpoint.keyPrefix)\(module).base_layer.bias") else { return }
            adapter.base.bias.value = try tensors.tensor(module, "base_layer.bias", shape: [adapter.outFeatures])
            adapter.base.biasIsTrainable = true
        }

        func isExtra(_ name: String) -> Bool {
            (config.modulesToSave ?? []).contains { name.hasPrefix("\(PeftCheckpoint.keyPrefix)\($0).") }
        }
    }

    /// Reads a checkpoint folder (config and tensors; nothing is attached yet). A config of a
    /// type no registered variant reads is an error naming the known ones.
    public static func load(_ directory: String) throws -> Loaded {
        let config = try PeftConfig(contentsOf: "\(directory)/\(configFile)")
        let file = try SafetensorsFile(path: "\(directory)/\(weightsFile)")
        return Loaded(directory: directory, config: config, file: file, baseModelSHA256: file.metadata[baseSHA256Key],
                      codec: try VariantRegistry.codec(for: config))
    }
}

extension PeftCheckpoint.Loaded {
    /// The base format the adapter was trained on, from the weights file's metadata (float32 when
    /// it records none, as adapters written before QLoRA do).
    public func trainedBaseFormat() throws -> BaseWeightFormat {
        let recorded = file.metadata[PeftCheckpoint.baseWeightsKey]
        guard let format = recorded.map(BaseWeightFormat.init) ?? .float32 else {
            throw CheckpointError.invalidConfig(path: weightsPath, key: PeftCheckpoint.baseWeightsKey,
                                                reason: "'\(recorded!)' is not a base format (fp32, nf4, nf4-b<block size>, …-single)")
        }
        return format
    }
}
