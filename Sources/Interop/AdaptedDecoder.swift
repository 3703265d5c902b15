import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels

/// A Llama decoder with a peft checkpoint attached (`PeftModel.from_pretrained` on a causal LM):
/// every adapter is rebuilt by its variant's codec onto the decoder's own frozen Linear, strictly
/// (every tensor read and fitting, the modules with tensors exactly those peft's `target_modules`
/// and `layers_to_transform` select, the base the one the adapter was trained on). peft's keys for
/// a causal LM are `base_model.model.model.layers.N.…`: `PeftCheckpoint.keyPrefix` followed by the
/// decoder's module names, so the codecs read them as they read the encoder's.
public final class AdaptedDecoder {
    public let checkpoint: PeftCheckpoint.Loaded
    public let decoder: LlamaDecoder
    /// How the base holds its weights here, and how it held them in training (the adapter's
    /// metadata; float32 for adapters that do not say, as peft's own).
    public let baseFormat: BaseWeightFormat
    public let trainedBaseFormat: BaseWeightFormat
    /// Whether NaN or infinite values were let in (`--allow-non-finite`); then merged weights may hold them too.
    public let allowsNonFinite: Bool

    /// The attached adapters by peft module name, in model order.
    public var adapters: [NamedAdapter] { decoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) } }

    /// Attaches `checkpoint` to the decoder of `weights`. `baseModelSHA256` is the sha256 of the
    /// base's weights file, checked against the one the adapter recorded (nil skips the check).
    /// NaN or infinite adapter values are an error naming the tensor unless `allowNonFinite`. The
    /// base holds its weights in `baseFormat`, by default the format the adapter was trained on.
    public init(checkpoint: PeftCheckpoint.Loaded, weights: LlamaWeights, baseModelSHA256: String?,
                allowNonFinite: Bool = false, baseFormat requested: BaseWeightFormat? = nil) throws {
        let trained = try checkpoint.trainedBaseFormat()
        let baseFormat = requested ?? trained
        let shapes = weights.config.modules
        try PeftSelection(checkpoint.config).check(stored: checkpoint.modules, against: shapes.map(\.name), in: checkpoint.weightsPath)
        // The Linears' weights in the order of `config.modules` (each layer's in `linearNames` order).
        let linearWeights = Dictionary(uniqueKeysWithValues: zip(shapes.map(\.name), weights.layers.flatMap(\.linears)))
        let buffer = DequantizationBuffer()
        // The adapted modules' bases are built here (attach's look-up cannot throw) and handed to the
        // decoder, which builds the others on the same buffer.
        let bases = try Dictionary(uniqueKeysWithValues: checkpoint.modules.compactMap { module in
            try linearWeights[module].map { (module, try baseFormat.frozenLinear(weight: $0, bias: nil, buffer: buffer)) }
        })
        let attached = try checkpoint.attach(to: { bases[$0] }, baseModelSHA256: baseModelSHA256, allowNonFinite: allowNonFinite)
        let byName = Dictionary(uniqueKeysWithValues: attached.map { ($0.name, $0.adapter) })
        decoder = try LlamaDecoder(weights: weights, baseFormat: baseFormat, buffer: buffer, prebuilt: bases) { module, _ in byName[module.name] }
        self.checkpoint = checkpoint
        self.baseFormat = baseFormat
        trainedBaseFormat = trained
        allowsNonFinite = allowNonFinite
    }

    /// The checkpoint in `directory` on its base decoder: `model` when given, else the Llama family
    /// its `base_model_name_or_path` names, which must be in the cache (the error names the fetch command).
    public static func open(_ directory: String, model: (any ModelFamily)? = nil, store: ModelStore = .default,
                            allowNonFinite: Bool = false, baseFormat: BaseWeightFormat? = nil) throws -> (adapted: AdaptedDecoder, base: ModelFiles) {
        let checkpoint = try PeftCheckpoint.load(directory)
        let named = checkpoint.config.baseModelNameOrPath
        guard let family = (model ?? ModelFamilyRegistry.family(forBaseModel: named)) as? any LlamaFamily else {
            let loadable = ModelFamilyRegistry.families.filter { $0 is any LlamaFamily }
            throw CheckpointError.unknownBaseModel(path: "\(directory)/\(PeftCheckpoint.configFile)", name: named ?? model?.name ?? "nothing",
                                                   known: ModelFamilyRegistry.described(loadable))
        }
        let files = try store.locate(family)
        let file = try GGUFFile(path: files.weightsPath)
        let keepingBlocks = try (baseFormat ?? checkpoint.trainedBaseFormat()) == .stored
        let weights = try LlamaWeights(gguf: file, config: LlamaConfig(gguf: file), keepingBlocks: keepingBlocks)
        let adapted = try AdaptedDecoder(checkpoint: checkpoint, weights: weights, baseModelSHA256: files.weightsSHA256,
                                         allowNonFinite: allowNonFinite, baseFormat: baseFormat)
        return (adapted, files)
    }

    /// A warning for a base held otherwise than in training (its outputs then differ from the
    /// trained model's), or nil.
    public var baseFormatWarning: String? { AdaptedModel.baseFormatWarning(trained: trainedBaseFormat, loaded: baseFormat) }

    /// Whether every adapter is folded into its base (`merge()`).
    public var isMerged: Bool { decoder.adapters.allSatisfy { $0.adapter.isMerged } }

    /// Folds every adapter into its base Linear (peft's `merge_adapter`): the same logits, up to
    /// rounding, from plain products.
    public func merge() {
        for (_, adapter) in decoder.adapters where !adapter.isMerged { adapter.merge() }
    }

    /// Restores every base Linear's W0 after `merge()`.
    public func unmerge() {
        for (_, adapter) in decoder.adapters where adapter.isMerged { adapter.unmerge() }
    }

    /// Writes `decoder`'s adapters as `plan`'s codec exports them, in peft's layout for `family`:
    /// `base_model_name_or_path` its hub name, `task_type` its peft task (`CAUSAL_LM`), and
    /// `layers_to_transform` the adapted layers when they are not all of them, so that
    /// `PeftModel.from_pretrained` adapts exactly the modules that have tensors. An adapted set that
    /// `target_modules` and `layers_to_transform` cannot describe is an error, not a folder peft
    /// would load with extra, untrained adapters. The weights' metadata records `baseFormat` and
    /// the family's pinned weights sha256.
    public static func save(_ decoder: LlamaDecoder, plan: any AdapterPlan, method: any AdaptationMethod, family: any LlamaFamily,
                            baseFormat: BaseWeightFormat = .float32, to directory: String) throws {
        let layers = decoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) }
        var adapter = try plan.peftAdapter(layers: layers, method: method)
        adapter.config.path = "\(directory)/\(PeftCheckpoint.configFile)"
        try describe(&adapter.config, adapters: layers.map(\.name), of: decoder.config, family: family,
                     weightsPath: "\(directory)/\(PeftCheckpoint.weightsFile)")
        try PeftCheckpoint.save(adapter, to: directory, baseModelSHA256: family.weightsSHA256,
                                metadata: ["format": "pt", PeftCheckpoint.baseWeightsKey: baseFormat.description])
    }

    /// The config fields of a causal LM's adapter on `family`: `base_model_name_or_path` its hub
    /// name, `task_type` its peft task, `layers_to_transform` the adapted layers when they are not
    /// all of them; checked to select exactly `adapters` (whose tensors go to `weightsPath`).
    static func describe(_ config: inout PeftConfig, adapters: [String], of architecture: LlamaConfig, family: any ModelFamily,
                         weightsPath: String) throws {
        config.baseModelNameOrPath = family.hubName
        config["task_type"] = family.peftTaskType.map(JSONValue.string) ?? .null
        // With a task type peft builds a task model (PeftModelForCausalLM) and writes no auto_mapping.
        config["auto_mapping"] = .null
        PeftSelection.recordLayers(&config, adapters: adapters, layerCount: architecture.layerCount)
        try PeftSelection(config).check(stored: adapters.sorted(), against: architecture.modules.map(\.name), in: weightsPath)
    }
}

/// The Linears peft adapts under a config: those `target_modules` selects (a list entry names a
/// module or a suffix after a dot; a string is a regular expression matched in full, or
/// `all-linear`) whose layer is in `layers_to_transform` (an index or a list; null: every layer).
struct PeftSelection {
    let config: PeftConfig
    let layers: Set<Int>?

    init(_ config: PeftConfig) throws {
        self.config = config
        layers = try Self.layersToTransform(config)
        // peft finds a module's layer index after `layers_pattern` (default: any of its known
        // names); a Llama decoder's layers are `model.layers.N`, so only `layers` can name them.
        switch config["layers_pattern"] {
        case nil, .null?, .string("layers")?, .array([.string("layers")])?: break
        case let other?:
            throw config.invalid("layers_pattern", "found \(other.summary); this decoder's layers are model.layers.N, so only \"layers\" (or null) finds them")
        }
    }

    /// The config's `layers_to_transform` (nil: every layer).
    static func layersToTransform(_ config: PeftConfig) throws -> Set<Int>? {
        switch config["layers_to_transform"] {
        case nil, .null?:
            return nil
        case let .int(index)?:
            return [index]
        case let .array(values)? where values.allSatisfy({ if case .int = $0 { true } else { false } }):
            return Set(values.compactMap { if case let .int(index) = $0 { index } else { nil } })
        case let other?:
            throw config.invalid("layers_to_transform", "found \(other.summary), expected a layer index, a list of them or null")
        }
    }

    /// `layers_to_transform` the layers `adapters` are in, when they are not all `layerCount`
    /// (peft would adapt the targets in every layer otherwise).
    static func recordLayers(_ config: inout PeftConfig, adapters: [String], layerCount: Int) {
        let adaptedLayers = Set(adapters.compactMap(ModuleShape.layerIndex(in:))).sorted()
        if !adaptedLayers.isEmpty, adaptedLayers.count < layerCount {
            config["layers_to_transform"] = .array(adaptedLayers.map(JSONValue.int))
        }
    }

    /// Whether `target_modules` alone selects `module`.
    func targets(_ module: String) throws -> Bool {
        if config.targetModulesPattern != nil { return try config.targetModulesPatternMatches(module) }
        return config.targetModules.contains { module == $0 || module.hasSuffix("." + $0) }
    }

    func selects(_ module: String) throws -> Bool {
        if let layers, !layers.contains(ModuleShape.layerIndex(in: module) ?? -1) { return false }
        return try targets(module)
    }

    /// The modules with tensors in `path` (`stored`) must be exactly the ones of `modules` this
    /// config selects: peft would not adapt a module it does not select (its tensors would be
    /// ignored), and would leave one it selects without tensors at its initialisation. A stored
    /// name that is not a module of the model is left to `attach`, which names it.
    func check(stored: [String], against modules: [String], in path: String) throws {
        let known = Set(modules), present = Set(stored)
        let layersText = layers.map { " and layers_to_transform \($0.sorted())" } ?? ""
        let listed = config.targetModulesPattern.map { "'\($0)'" } ?? "\(config.targetModules)"
        for module in stored where known.contains(module) {
            guard try !selects(module) else { continue }
            let key = try targets(module) ? "layers_to_transform" : "target_modules"
            throw config.invalid(key, "target_modules \(listed)\(layersText) do not select \(module), which has adapter tensors in \(path); peft would not adapt it")
        }
        if let missing = try modules.first(where: { try !present.contains($0) && selects($0) }) {
            throw config.invalid("target_modules", "target_modules \(listed)\(layersText) select \(missing), which has no adapter tensors in \(path); peft would leave it at its initialisation, LoRABench refuses")
        }
    }
}
