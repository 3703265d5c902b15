import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchTraining

/// AdaLoRA as a manifest variant (`- adalora` or `- {name: adalora, mode: svd-prune, …}`), in two modes:
/// - `peft` (default): peft's AdaLoRA, SVD-form layers P·Λ·Q (`AdaLoRALayer`) whose ranks the
///   `AdaLoRAAllocator` masks to a shrinking budget (Zhang et al. 2023); saved as peft's ADALORA.
/// - `svd-prune`: ours, LoRA (or DoRA) layers re-factored to the rank an energy rule keeps
///   (`SVDPruneMethod`, documented in Experiments/README.md); saved as peft's LORA with per-module
///   `rank_pattern` / `alpha_pattern`.
public struct AdaLoRAVariant: Variant, PeftCodec {
    public static let name = "adalora"
    public static let summary = "AdaLoRA (Zhang et al. 2023): ranks allocated in training; mode peft (budget masking) or svd-prune (ours)"
    static let peftKeys = ["init_r", "target_r", "tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight"]
    static let svdKeys = ["interval", "energy_threshold", "min_rank", "max_rank", "start_step", "stop_step", "optimizer_state", "dora"]
    public static let keys = ["mode"] + peftKeys + svdKeys

    public enum Mode: Sendable {
        case peft(PeftSettings)
        case svdPrune(SVDSettings)
    }

    /// peft's `AdaLoraConfig`; nil step counts default from the run's steps.
    public struct PeftSettings: Sendable, Equatable {
        public var initRank: ScaledValue = .timesRank(1.5)
        public var targetRank: ScaledValue = .timesRank(1)
        public var tinit: Int?
        public var tfinal: Int?
        public var deltaT = 10
        public var beta1 = 0.85
        public var beta2 = 0.85
        public var orthRegWeight = 0.5
    }

    /// svd-prune's settings; nil step counts default from the run's steps.
    public struct SVDSettings: Sendable, Equatable {
        public var interval: Int?
        public var energyThreshold = 0.95
        public var minRank = 1
        public var maxRank: ScaledValue = .timesRank(1)
        public var startStep: Int?
        public var stopStep: Int?
        public var optimizerState: OptimizerStatePolicy = .reset
        /// Re-factor DoRA layers instead of LoRA ones.
        public var dora = false
    }

    public var mode: Mode

    public init(settings: any SettingsReader) throws {
        switch try settings.choice("mode", from: ["peft", "svd-prune"]) ?? "peft" {
        case "svd-prune":
            try settings.reject(Self.peftKeys, because: "it is a key of mode peft")
            mode = .svdPrune(try Self.svdSettings(settings))
        default:
            try settings.reject(Self.svdKeys, because: "it is a key of mode svd-prune")
            mode = .peft(try Self.peftSettings(settings))
        }
    }

    private static func peftSettings(_ settings: any SettingsReader) throws -> PeftSettings {
        var peft = PeftSettings()
        let rankAllowed = "an integer ≥ 1, or a multiple of the run's rank such as r or 1.5r"
        if let value = try settings.scaledValue("init_r", allowed: rankAllowed, where: ScaledValue.isWholeRank) { peft.initRank = value }
        if let value = try settings.scaledValue("target_r", allowed: rankAllowed, where: ScaledValue.isWholeRank) { peft.targetRank = value }
        peft.tinit = try settings.int("tinit", allowed: "an integer ≥ 0 (warm-up steps)", in: 0...Int.max)
        peft.tfinal = try settings.int("tfinal", allowed: "an integer ≥ 0 (final steps)", in: 0...Int.max)
        if let value = try settings.int("deltaT", allowed: "an integer ≥ 1 (steps between maskings)", in: 1...Int.max) { peft.deltaT = value }
        let betaAllowed = "a number in (0, 1)"
        if let value = try settings.number("beta1", allowed: betaAllowed, where: { $0 > 0 && $0 < 1 }) { peft.beta1 = value }
        if let value = try settings.number("beta2", allowed: betaAllowed, where: { $0 > 0 && $0 < 1 }) { peft.beta2 = value }
        if let value = try settings.number("orth_reg_weight", allowed: "a number ≥ 0", where: { $0 >= 0 }) { peft.orthRegWeight = value }
        return peft
    }

    private static func svdSettings(_ settings: any SettingsReader) throws -> SVDSettings {
        var svd = SVDSettings()
        svd.interval = try settings.int("interval", allowed: "an integer ≥ 1 (steps)", in: 1...Int.max)
        if let value = try settings.number("energy_threshold", allowed: "a number in (0, 1] (share of Σσ² kept)", where: { $0 > 0 && $0 <= 1 }) {
            svd.energyThreshold = value
        }
        if let value = try settings.int("min_rank", allowed: "an integer ≥ 1", in: 1...Int.max) { svd.minRank = value }
        if let value = try settings.scaledValue("max_rank", allowed: "an integer ≥ 1, or a multiple of the run's rank such as r",
                                                where: ScaledValue.isWholeRank) {
            svd.maxRank = value
        }
        svd.startStep = try settings.int("start_step", allowed: "an integer ≥ 1", in: 1...Int.max)
        svd.stopStep = try settings.int("stop_step", allowed: "an integer ≥ 1", in: 1...Int.max)
        if let value = try settings.choice("optimizer_state", from: OptimizerStatePolicy.allCases.map(\.rawValue)) {
            svd.optimizerState = OptimizerStatePolicy(rawValue: value) ?? .reset
        }
        svd.dora = try settings.bool("dora") ?? false
        return svd
    }

    /// adalora-peft, adalora-svd, adalora-svd-dora.
    public var label: String {
        switch mode {
        case .peft: return "adalora-peft"
        case let .svdPrune(svd): return svd.dora ? "adalora-svd-dora" : "adalora-svd"
        }
    }

    public var layerKind: String {
        switch mode {
        case .peft: return "adalora"
        case let .svdPrune(svd): return svd.dora ? "dora" : "lora"
        }
    }

    /// peft mode has its own initialisation (P, Q ~ N(0, 0.02²), Λ = 0) and scaling α/r0.
    public var axes: VariantAxes {
        switch mode {
        case .peft: return [.rank, .alpha, .targetModules, .dropout]
        case .svdPrune: return .factorAdapter
        }
    }

    public func plan(for run: RunShape) throws -> any AdapterPlan {
        let steps = run.steps
        switch mode {
        case let .peft(peft):
            let initRank = peft.initRank.rank(for: run.rank)
            let schedule = try AdaLoRASchedule(
                targetRank: peft.targetRank.rank(for: run.rank), initialWarmup: peft.tinit ?? steps / 10,
                finalWarmup: peft.tfinal ?? steps / 5, maskInterval: peft.deltaT, beta1: Float(peft.beta1),
                beta2: Float(peft.beta2), orthogonalRegularization: Float(peft.orthRegWeight), totalSteps: steps)
            guard schedule.targetRank <= initRank else {
                throw AdapterError.invalidSetting(name: "target_r", value: "\(schedule.targetRank)",
                                                  allowed: "target_r ≤ init_r = \(initRank) at rank \(run.rank)")
            }
            return PeftModePlan(run: run, initialRank: initRank, schedule: schedule)
        case let .svdPrune(svd):
            let interval = svd.interval ?? max(1, steps / 20)
            let start = svd.startStep ?? max(interval, steps / 5)
            let settings = try SVDPruneSettings(
                interval: interval, energy: Float(svd.energyThreshold), minRank: svd.minRank,
                maxRank: min(svd.maxRank.rank(for: run.rank), run.rank), startStep: start,
                stopStep: svd.stopStep ?? max(start, steps * 7 / 10), optimizerState: svd.optimizerState)
            return SVDPrunePlan(run: run, prune: settings, dora: svd.dora)
        }
    }

    struct PeftModePlan: AdapterPlan {
        let run: RunShape
        let initialRank: Int
        let schedule: AdaLoRASchedule

        var adapterRank: Int { initialRank }
        var scaling: Float { AdaLoRALayer.scaling(alpha: Float(run.alpha), initialRank: initialRank) }
        var changesRank: Bool { true }
        var hasRegularizer: Bool { true }
        var settings: SettingList {
            [("mode", .text("peft")), ("init_r", .int(initialRank)), ("target_r", .int(schedule.targetRank)),
             ("tinit", .int(schedule.initialWarmup)), ("tfinal", .int(schedule.finalWarmup)), ("deltaT", .int(schedule.maskInterval)),
             ("beta1", .float(schedule.beta1)), ("beta2", .float(schedule.beta2)),
             ("orth_reg_weight", .float(schedule.orthogonalRegularization))]
        }

        func layerBuilder(for modules: [ModuleShape]) throws -> (any LayerBuilder)? {
            let config = run.adapterConfig(rank: initialRank)
            return ClosureLayerBuilder { _, base, seed in try AdaLoRALayer(base: base, config: config, seed: seed) }
        }

        func makeMethod(layers: [NamedAdapter]) throws -> any AdaptationMethod {
            try AdaLoRAAllocator(layers: layers, schedule: schedule)
        }

        /// An `ADALORA` config with init_r, the schedule and the kept triplets (`rank_pattern`,
        /// keys `<module>.lora_E`; null before the first masking); each module's P, Λ, Q sliced
        /// to its kept triplets, as peft saves them.
        func peftAdapter(layers: [NamedAdapter], method: any AdaptationMethod) throws -> PeftAdapter {
            let rankPattern = (method as? AdaLoRAAllocator)?.rankPattern ?? [:]
            var config = LoRALayout.config(run: run, rank: 8, alpha: run.alpha, useDoRA: false)
            config["peft_type"] = .string("ADALORA")
            // AdaLoRA reads init_r; peft leaves `r` at its unused default and warns about any other value.
            config["use_rslora"] = .bool(false)
            // Keyed as peft saves it: its allocator keys the kept triplets by the base model's
            // parameter name `<module>.lora_E.<adapter>` and save_pretrained drops `.<adapter>`;
            // loading, resize_modules_by_rank_pattern drops `.lora_E` to find the module. peft
            // 0.21.2's PeftModel.from_pretrained warns that these keys "did not match any targeted
            // module and were ignored" for its own AdaLoRA checkpoints too: that check
            // (BaseTuner.inject_adapter) reads every rank_pattern as LoRA's, module-name patterns
            // to ranks, while AdaLoRA's keys name lora_E and still resize each module after it.
            config["rank_pattern"] = rankPattern.isEmpty ? .null
                : .object(Dictionary(uniqueKeysWithValues: rankPattern.map { ("\($0.key).lora_E", .array($0.value.map(JSONValue.bool))) }))
            config["init_r"] = .int(initialRank)
            config["target_r"] = .int(schedule.targetRank)
            config["tinit"] = .int(schedule.initialWarmup)
            config["tfinal"] = .int(schedule.finalWarmup)
            config["deltaT"] = .int(schedule.maskInterval)
            config["beta1"] = .number(Double(schedule.beta1))
            config["beta2"] = .number(Double(schedule.beta2))
            config["orth_reg_weight"] = .number(Double(schedule.orthogonalRegularization))
            config["total_step"] = .int(schedule.totalSteps)
            config["loftq_config"] = .object([:])
            var adapter = PeftAdapter(config: config)
            for named in layers {
                guard let layer = named.adapter as? AdaLoRALayer else {
                    throw AdapterError.invalidSetting(name: "peft ADALORA layout", value: named.name, allowed: "it holds AdaLoRA layers")
                }
                let kept = (rankPattern[named.name] ?? [Bool](repeating: true, count: layer.rank)).enumerated().filter(\.element).map(\.offset)
                adapter.add(named.name, "lora_A", TensorToWrite(layer.a.value.selectingRows(kept)))
                adapter.add(named.name, "lora_B", TensorToWrite(layer.b.value.selectingColumns(kept)))
                adapter.add(named.name, "lora_E", TensorToWrite(layer.e.value.selectingRows(kept)))
            }
            adapter.addTrainedBiases(of: layers)
            return adapter
        }
    }

    struct SVDPrunePlan: AdapterPlan {
        let run: RunShape
        let prune: SVDPruneSettings
        let dora: Bool

        var adapterRank: Int { run.rank }
        var scaling: Float { run.adapterConfig().scaling }
        var changesRank: Bool { true }
        var settings: SettingList {
            [("mode", .text("svd-prune")), ("interval", .int(prune.interval)), ("energy_threshold", .float(prune.energy)),
             ("min_rank", .int(prune.minRank)), ("max_rank", .int(prune.maxRank)), ("start_step", .int(prune.startStep)),
             ("stop_step", .int(prune.stopStep)), ("optimizer_state", .text(prune.optimizerState.rawValue))]
        }

        func layerBuilder(for modules: [ModuleShape]) throws -> (any LayerBuilder)? {
            let config = run.adapterConfig()
            let dora = self.dora
            return ClosureLayerBuilder { _, base, seed in
                dora ? try DoRA(base: base, config: config, seed: seed) as any Adapter : try LoRA(base: base, config: config, seed: seed)
            }
        }

        func makeMethod(layers: [NamedAdapter]) throws -> any AdaptationMethod {
            try SVDPruneMethod(layers: layers, settings: prune)
        }

        func peftAdapter(layers: [NamedAdapter], method: any AdaptationMethod) throws -> PeftAdapter {
            dora ? try DoRAVariant.peftAdapter(layers: layers, run: run, rank: run.rank)
                 : try LoRALayout.adapter(layers: layers, run: run, rank: run.rank, useDoRA: false)
        }
    }

    // MARK: peft codec (ADALORA; svd-prune's adapters are LORA and read back as LoRA or DoRA)

    public static func decodes(_ config: PeftConfig) throws -> Bool { config.peftType == "ADALORA" }
    public static let moduleMarkers = [".lora_A", ".lora_B", ".lora_E"]

    public static func adapter(for module: String, base: FrozenLinear, from checkpoint: PeftTensors) throws -> any Adapter {
        let a = try checkpoint.tensor(module, "lora_A", rowsFree: base.inFeatures)
        let b = try checkpoint.tensor(module, "lora_B", shape: [base.outFeatures, a.rows])
        let e = try checkpoint.tensor(module, "lora_E", shape: [a.rows, 1])
        let config = checkpoint.config
        return try AdaLoRALayer(base: base, a: a, b: b, e: e, alpha: try config.alpha ?? 8,
                                initialRank: try config.int("init_r", allowed: "an integer ≥ 1 (the rank α is divided by)", in: 1...Int.max) ?? a.rows)
    }
}
