import LoRABenchTraining
import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTensorIO

/// VeRA as a manifest variant (`- vera` or `- {name: vera, d_initial: 0.1}`): the layer and the
/// shared projections in `VeRALayer.swift`, peft's VERA layout with `save_projection: true`.
///
/// Its r is the projections' rank, which may exceed a layer's size (the paper uses r = 256 and
/// more: a layer trains only r + out values). α, rsLoRA and `init` do not apply.
public struct VeRAVariant: Variant, PeftCodec {
    public static let name = "vera"
    public static let summary = "VeRA (Kopiczko et al. 2024): frozen shared random A, B; trains λ_d [r] and λ_b [out]"
    public static let keys = ["d_initial", "projection_seed"]

    /// λ_d's initial value (peft's `d_initial`).
    public var dInitial = 0.1
    /// The projections' seed; nil draws them from the run's seed.
    public var projectionSeed: UInt64?

    public init(dInitial: Double = 0.1, projectionSeed: UInt64? = nil) {
        self.dInitial = dInitial
        self.projectionSeed = projectionSeed
    }

    public init(settings: any SettingsReader) throws {
        if let value = try settings.number("d_initial", allowed: "a number > 0 (λ_d's initial value)", where: { $0 > 0 && $0.isFinite }) {
            dInitial = value
        }
        projectionSeed = try settings.int("projection_seed", allowed: "an integer ≥ 0", in: 0...Int.max).map(UInt64.init)
    }

    public var label: String { Self.name }
    public var layerKind: String { "vera" }
    public var axes: VariantAxes { [.rank, .targetModules, .dropout] }

    public func plan(for run: RunShape) throws -> any AdapterPlan {
        guard run.rank >= 1 else { throw AdapterError.invalidSetting(name: "vera rank", value: "\(run.rank)", allowed: "it must be at least 1") }
        var rng = SplitMix64(seed: run.seed).derived("vera/projections")
        return Plan(run: run, dInitial: Float(dInitial), projectionSeed: projectionSeed ?? rng.next(), seedIsExplicit: projectionSeed != nil)
    }

    struct Plan: AdapterPlan {
        let run: RunShape
        let dInitial: Float
        let projectionSeed: UInt64
        let seedIsExplicit: Bool

        var adapterRank: Int { run.rank }
        var scaling: Float { 1 }
        var settings: SettingList {
            [("d_initial", .float(dInitial)), ("projection_seed", seedIsExplicit ? .int(Int(projectionSeed)) : .text("from the run's seed"))]
        }

        /// Any r ≥ 1 fits: A and B are slices of the shared projections, not factors of the layer.
        func validate(_ modules: [ModuleShape]) throws {}

        /// The projections are sized once for all of the model's adapted modules and shared.
        func layerBuilder(for modules: [ModuleShape]) throws -> (any LayerBuilder)? {
            let projections = try VeRAProjections(rank: run.rank, maxInFeatures: modules.map(\.inFeatures).max() ?? 0,
                                                  maxOutFeatures: modules.map(\.outFeatures).max() ?? 0, seed: projectionSeed)
            let (rank, dInitial, dropout) = (run.rank, dInitial, Float(run.dropout))
            return ClosureLayerBuilder { _, base, seed in
                try VeRALayer(base: base, projections: projections, rank: rank, dInitial: dInitial, dropout: dropout, seed: seed)
            }
        }

        func peftAdapter(layers: [NamedAdapter], method: any AdaptationMethod) throws -> PeftAdapter {
            var config = PeftConfig(peftType: "VERA", targetModules: run.targetModules)
            config["r"] = .int(run.rank)
            config["d_initial"] = .number(Double(dInitial))
            config["vera_dropout"] = .number(run.dropout)
            config["save_projection"] = .bool(true)
            config["projection_prng_key"] = .int(Int(projectionSeed % UInt64(Int32.max)))
            config["init_weights"] = .bool(true)
            var adapter = PeftAdapter(config: config)
            var shared: VeRAProjections?
            for named in layers {
                guard let layer = named.adapter as? VeRALayer else {
                    throw AdapterError.invalidSetting(name: "peft VERA layout", value: named.name, allowed: "it holds VeRA layers")
                }
                shared = shared ?? layer.projections
                adapter.add(named.name, "vera_lambda_b", TensorToWrite(layer.lambdaB.value, shape: [layer.outFeatures]))
                adapter.add(named.name, "vera_lambda_d", TensorToWrite(layer.lambdaD.value, shape: [layer.rank]))
            }
            if let shared {
                adapter.tensors[PeftAdapter.sharedPrefix + "vera_A"] = TensorToWrite(shared.a)
                adapter.tensors[PeftAdapter.sharedPrefix + "vera_B"] = TensorToWrite(shared.b)
            }
            adapter.addTrainedBiases(of: layers, mode: "vera_only")
            return adapter
        }
    }

    // MARK: peft codec

    public static func decodes(_ config: PeftConfig) throws -> Bool { config.peftType == "VERA" }
    public static let moduleMarkers = [".vera_lambda_b", ".vera_lambda_d"]

    /// peft regenerates the projections from `projection_prng_key` with torch's generator when
    /// they were not saved; LoRABench cannot draw torch's numbers, so it needs them in the file.
    public static func adapter(for module: String, base: FrozenLinear, from checkpoint: PeftTensors) throws -> any Adapter {
        let config = checkpoint.config
        guard try config.bool("save_projection") ?? true else {
            throw config.invalid("save_projection", "false: the shared projections are not in the file; save the adapter with save_projection=True")
        }
        let rank = try config.int("r") ?? 256
        let a = try checkpoint.storedTensor(PeftAdapter.sharedPrefix + "vera_A")
        let b = try checkpoint.storedTensor(PeftAdapter.sharedPrefix + "vera_B")
        guard a.rows == rank, b.cols == rank, a.cols >= base.inFeatures, b.rows >= base.outFeatures else {
            throw CheckpointError.wrongShape(path: checkpoint.path, name: PeftAdapter.sharedPrefix + "vera_A / vera_B",
                                             found: [a.rows, a.cols, b.rows, b.cols],
                                             expected: [rank, base.inFeatures, base.outFeatures, rank], expectedModel: config.modelName)
        }
        let lambdaB = try checkpoint.tensor(module, "vera_lambda_b", shape: [base.outFeatures])
        let lambdaD = try checkpoint.tensor(module, "vera_lambda_d", shape: [rank])
        return try VeRALayer(base: base, projections: VeRAProjections(a: a, b: b), lambdaD: lambdaD, lambdaB: lambdaB)
    }
}
