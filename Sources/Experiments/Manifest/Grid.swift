import Foundation
import LoRABenchAdapters
import LoRABenchResults
import LoRABenchTensorIO
import LoRABenchVariants
import Yams

/// One run of a sweep: a point of the axes' Cartesian product with every rule resolved.
public struct RunSpec {
    /// The results schema's axis columns (`AxisColumns`), which `axisValues` fills for a run.
    public static let axisColumns = AxisColumns.names

    public static func axisColumns(showingBase: Bool, learningRateAxis: Bool = false) -> [String] {
        AxisColumns.names(showingBase: showingBase, learningRateAxis: learningRateAxis)
    }

    /// `<variant>-r<rank>-a<alpha>-<init>-s<seed>-<hash>` (the axes that apply): the readable
    /// axes, then six hex digits of SHA-256 over every other resolved setting (task, training,
    /// variant details), so an id is stable across manifest edits that do not change the run and
    /// new when anything does.
    public let id: String
    public let variant: ResolvedVariant
    /// What the variant was resolved for.
    public let shape: RunShape
    /// α as the manifest wrote it (`2r`), the `alpha` column; nil where α does not apply.
    public let alphaRule: ScaledValue?
    /// nil where the variant has its own initialisation (AdaLoRA peft mode, VeRA).
    public let initialization: AdapterInit?
    /// The modules the targets select (none without adapters).
    public let moduleShapes: [ModuleShape]
    /// nil where rsLoRA does not apply.
    public let useRSLoRA: Bool?
    /// How the frozen base holds its weights (float32, or NF4 for QLoRA).
    public let base: BaseWeightFormat
    /// Whether the experiment's CSVs have a `base` column (some run's base is not float32).
    public let showsBase: Bool
    /// settings.yaml: every resolved setting of the run.
    public let settingsYAML: String
    /// Whether the manifest sweeps learning rates, so that the run has a `learning_rate` column.
    public let learningRateIsAxis: Bool

    /// The names of the modules the targets select.
    public var modules: [String] { moduleShapes.map(\.name) }
    public var rank: Int { shape.rank }
    public var seed: UInt64 { shape.seed }
    public var alpha: Double { shape.alpha }
    public var dropout: Double { shape.dropout }
    public var targetModules: [String] { shape.targetModules }
    public var learningRate: Double { variant.learningRate }

    /// The run's values for `axisColumns(showingBase:learningRateAxis:)`. An axis that does not
    /// apply to the variant is `n/a`.
    public var axisValues: [String] {
        let added = (showsBase ? [base.description] : []) + (learningRateIsAxis ? [formatNumber(variant.learningRate)] : [])
        guard variant.spec.hasAdapters else {
            return [id, variant.label, String(rank), "n/a", String(seed), "n/a", "n/a", "n/a", "n/a"] + added
        }
        return [id, variant.label, String(rank), alphaRule?.text ?? "n/a", String(seed), initialization?.name ?? "n/a",
                targetModules.joined(separator: "+"), formatNumber(dropout), useRSLoRA.map { String($0) } ?? "n/a"] + added
    }

    /// The factor on the low-rank product, as the adapter computes it (0 without an adapter).
    public var scaling: Float { variant.plan.scaling }
}

/// Expands a manifest's axes into runs, validating each against the task's modules.
enum Grid {
    /// Whether some variant trains at more than one learning rate.
    static func hasLearningRateAxis(training: TrainingSettings, sweep: SweepAxes) -> Bool {
        sweep.variants.contains { ($0.learningRates ?? training.learningRates).count > 1 }
    }

    /// Variants outermost and seeds innermost, so one configuration's seeds run back to back
    /// (its learning rates just outside them). An axis a variant ignores collapses to one value
    /// instead of repeating identical runs.
    static func expand(experiment: String, task: any TaskSettings, model: String, training: TrainingSettings,
                       sweep: SweepAxes) throws -> [RunSpec] {
        var runs: [RunSpec] = []
        var ids = Set<String>()
        func add(_ run: RunSpec) {
            if ids.insert(run.id).inserted { runs.append(run) }
        }
        let context = RunContext(experiment: experiment, task: task, model: model, training: training,
                                 learningRateAxis: hasLearningRateAxis(training: training, sweep: sweep), showsBase: sweep.showsBase)
        for variant in sweep.variants {
            // A rate of the training block is part of that block in settings.yaml; a variant's own is not.
            let learningRates: [(rate: Double, fromTraining: Double?)] = variant.learningRates.map { $0.map { ($0, nil) } }
                ?? training.learningRates.map { ($0, $0) }
            guard variant.hasAdapters else {
                guard task.hasHead else {
                    throw variant.location.error(allowed: "a variant with adapters: task \(task.name) on \(model) has no trainable head",
                                                 found: variant.name)
                }
                for base in sweep.bases {
                    for learningRate in learningRates {
                        for seed in sweep.seeds {
                            let shape = RunShape(rank: 0, alpha: 0, steps: training.steps, seed: seed)
                            add(try makeRun(context, variant: variant.resolve(shape, learningRate: learningRate.rate),
                                            trainingLearningRate: learningRate.fromTraining, shape: shape, alphaRule: nil,
                                            initialization: nil, modules: [], useRSLoRA: nil, base: base))
                        }
                    }
                }
                continue
            }
            let axes = variant.axes
            let alphas: [ScaledValue?] = axes.contains(.alpha) ? sweep.alphas : [nil]
            let inits: [AdapterInit?] = axes.contains(.initialization) ? variant.initialization.map { [$0] } ?? sweep.inits : [nil]
            let dropouts = axes.contains(.dropout) ? sweep.dropouts : [0]
            let rsloraValues: [Bool?] = axes.contains(.rsLoRA) ? variant.useRSLoRA ?? sweep.useRSLoRA : [nil]
            let ranks = variant.ranks.map { zip($0, variant.rankNodes).map { ($0, $1) } } ?? zip(sweep.ranks, sweep.rankNodes).map { ($0, $1) }
            for (rank, rankNode) in ranks {
                for alphaRule in alphas {
                    for initialization in inits {
                        for targets in sweep.targetModules {
                            let modules = task.modules.filter { module in
                                targets.contains(where: module.matches) && sweep.layers.map { $0.contains(module.layerIndex ?? -1) } ?? true
                            }
                            for dropout in dropouts {
                                for useRSLoRA in rsloraValues {
                                    for base in sweep.bases {
                                        for learningRate in learningRates {
                                            for seed in sweep.seeds {
                                                let shape = RunShape(rank: rank, alpha: alphaRule?.value(rank: rank) ?? 0, steps: training.steps,
                                                                     seed: seed, initialization: initialization ?? .kaiming,
                                                                     useRSLoRA: useRSLoRA ?? false, dropout: dropout, targetModules: targets)
                                                let resolved = try variant.resolve(shape, learningRate: learningRate.rate)
                                                try check(resolved, rank: rank, fits: modules, at: rankNode)
                                                add(try makeRun(context, variant: resolved, trainingLearningRate: learningRate.fromTraining,
                                                                shape: shape, alphaRule: alphaRule, initialization: initialization,
                                                                modules: modules, useRSLoRA: useRSLoRA, base: base))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return runs
    }

    /// What every run of a manifest shares.
    private struct RunContext {
        var experiment: String
        var task: any TaskSettings
        var model: String
        var training: TrainingSettings
        var learningRateAxis: Bool
        var showsBase: Bool
    }

    private static func check(_ variant: ResolvedVariant, rank: Int, fits modules: [ModuleShape], at node: ManifestNode) throws {
        do {
            try variant.plan.validate(modules)
        } catch let AdapterError.invalidRank(_, inFeatures, outFeatures) {
            let what = variant.adapterRank == rank ? "rank \(rank)" : "rank \(rank) (\(variant.label) builds rank-\(variant.adapterRank) adapters)"
            let module = modules.first { $0.inFeatures == inFeatures && $0.outFeatures == outFeatures }?.name ?? "a targeted module"
            throw node.error(allowed: "ranks up to \(min(inFeatures, outFeatures)): module \(module) is \(outFeatures)x\(inFeatures)", found: what)
        } catch let error as AdapterError {
            throw node.error(allowed: "a rank that fits every targeted module", found: "rank \(rank): \(error.description)")
        }
    }

    /// `trainingLearningRate` is the run's rate when it comes from the training block.
    private static func makeRun(_ context: RunContext, variant: ResolvedVariant, trainingLearningRate: Double?, shape: RunShape,
                                alphaRule: ScaledValue?, initialization: AdapterInit?, modules: [ModuleShape],
                                useRSLoRA: Bool?, base: BaseWeightFormat) throws -> RunSpec {
        var body: [(String, Node)] = [
            ("task", context.task.resolved),
            ("model", Settings.text(context.model)),
            ("training", context.training.resolved(runLearningRate: trainingLearningRate)),
            ("variant", variant.resolved),
            ("rank", Settings.int(shape.rank)),
        ]
        var readable: [String?] = [variant.label]
        if variant.spec.hasAdapters {
            if let alphaRule { body += [("alpha", Settings.number(shape.alpha)), ("alpha_rule", Settings.text(alphaRule.text))] }
            body += [
                ("seed", Settings.int(Int(shape.seed))),
                ("init", Settings.text(initialization?.name ?? "n/a")),
                ("target_modules", Settings.list(modules.map(\.name))),
                ("dropout", Settings.number(shape.dropout)),
            ]
            if let useRSLoRA { body.append(("use_rslora", Settings.bool(useRSLoRA))) }
            readable += ["r\(shape.rank)", alphaRule.map { _ in "a\(formatNumber(shape.alpha))" }, initialization?.name]
        } else {
            body.append(("seed", Settings.int(Int(shape.seed))))
        }
        // Only a quantized base enters the settings and the id, so float32 runs keep the ids they had.
        if base != .float32 {
            body.append(("base", Settings.text(base.description)))
            readable.append(base.description)
        }
        let hash = String(SHA256Digest.hex(of: Data(try Settings.yaml(Settings.map(body)).utf8)).prefix(6))
        readable += ["s\(shape.seed)", hash]
        let id = readable.compactMap { $0 }.joined(separator: "-")
        let settings = Settings.map([("run_id", Settings.text(id)), ("experiment", Settings.text(context.experiment))] + body)
        return RunSpec(id: id, variant: variant, shape: shape, alphaRule: alphaRule, initialization: initialization,
                       moduleShapes: modules, useRSLoRA: useRSLoRA, base: base, showsBase: context.showsBase,
                       settingsYAML: try Settings.yaml(settings), learningRateIsAxis: context.learningRateAxis)
    }
}
