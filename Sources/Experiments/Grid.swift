import Foundation
import LoRABenchAdapters
import LoRABenchTensorIO
import LoRABenchVariants
import Yams

/// One run of a sweep: a point of the axes' Cartesian product with every rule resolved.
public struct RunSpec {
    /// The axis columns of the experiment's metrics.csv and summary.csv, in order; an experiment
    /// on a quantized base adds `base` (`axisColumns(showingBase:)`), so other experiments keep
    /// their columns.
    public static let axisColumns = ["run_id", "variant", "rank", "alpha", "seed", "init", "target_modules", "dropout", "use_rslora"]

    public static func axisColumns(showingBase: Bool) -> [String] { axisColumns + (showingBase ? ["base"] : []) }

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

    /// The names of the modules the targets select.
    public var modules: [String] { moduleShapes.map(\.name) }
    public var rank: Int { shape.rank }
    public var seed: UInt64 { shape.seed }
    public var alpha: Double { shape.alpha }
    public var dropout: Double { shape.dropout }
    public var targetModules: [String] { shape.targetModules }

    /// The run's values for `axisColumns`. An axis that does not apply to the variant is `n/a`.
    public var axisValues: [String] {
        let baseValue = showsBase ? [base.description] : []
        guard variant.spec.hasAdapters else {
            return [id, variant.label, String(rank), "n/a", String(seed), "n/a", "n/a", "n/a", "n/a"] + baseValue
        }
        return [id, variant.label, String(rank), alphaRule?.text ?? "n/a", String(seed), initialization?.name ?? "n/a",
                targetModules.joined(separator: "+"), formatNumber(dropout), useRSLoRA.map { String($0) } ?? "n/a"] + baseValue
    }

    /// The factor on the low-rank product, as the adapter computes it (0 without an adapter).
    public var scaling: Float { variant.plan.scaling }
}

/// Expands a manifest's axes into runs, validating each against the task's modules.
enum Grid {
    /// Variants outermost and seeds innermost, so one configuration's seeds run back to back.
    /// An axis a variant ignores collapses to one value instead of repeating identical runs.
    static func expand(experiment: String, task: any TaskSettings, model: String, training: TrainingSettings,
                       sweep: SweepAxes) throws -> [RunSpec] {
        var runs: [RunSpec] = []
        var ids = Set<String>()
        func add(_ run: RunSpec) {
            if ids.insert(run.id).inserted { runs.append(run) }
        }
        for variant in sweep.variants {
            guard variant.hasAdapters else {
                guard task.hasHead else {
                    throw variant.location.error(allowed: "a variant with adapters: task \(task.name) has no trainable head",
                                                 found: variant.name)
                }
                for base in sweep.bases {
                    for seed in sweep.seeds {
                        let shape = RunShape(rank: 0, alpha: 0, steps: training.steps, seed: seed)
                        add(try makeRun(experiment: experiment, task: task, model: model, training: training,
                                        variant: variant.resolve(shape, training: training), shape: shape, alphaRule: nil,
                                        initialization: nil, modules: [], useRSLoRA: nil, base: base, showsBase: sweep.showsBase))
                    }
                }
                continue
            }
            let axes = variant.axes
            let alphas: [ScaledValue?] = axes.contains(.alpha) ? sweep.alphas : [nil]
            let inits: [AdapterInit?] = axes.contains(.initialization) ? variant.initialization.map { [$0] } ?? sweep.inits : [nil]
            let dropouts = axes.contains(.dropout) ? sweep.dropouts : [0]
            let rsloraValues: [Bool?] = axes.contains(.rsLoRA) ? sweep.useRSLoRA : [nil]
            for (rank, rankNode) in zip(sweep.ranks, sweep.rankNodes) {
                for alphaRule in alphas {
                    for initialization in inits {
                        for targets in sweep.targetModules {
                            let modules = task.modules.filter { module in targets.contains(where: module.matches) }
                            for dropout in dropouts {
                                for useRSLoRA in rsloraValues {
                                    for base in sweep.bases {
                                        for seed in sweep.seeds {
                                            let shape = RunShape(rank: rank, alpha: alphaRule?.value(rank: rank) ?? 0, steps: training.steps,
                                                                 seed: seed, initialization: initialization ?? .kaiming,
                                                                 useRSLoRA: useRSLoRA ?? false, dropout: dropout, targetModules: targets)
                                            let resolved = try variant.resolve(shape, training: training)
                                            try check(resolved, rank: rank, fits: modules, at: rankNode)
                                            add(try makeRun(experiment: experiment, task: task, model: model, training: training,
                                                            variant: resolved, shape: shape, alphaRule: alphaRule, initialization: initialization,
                                                            modules: modules, useRSLoRA: useRSLoRA, base: base, showsBase: sweep.showsBase))
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

    private static func makeRun(experiment: String, task: any TaskSettings, model: String, training: TrainingSettings,
                                variant: ResolvedVariant, shape: RunShape, alphaRule: ScaledValue?, initialization: AdapterInit?,
                                modules: [ModuleShape], useRSLoRA: Bool?, base: BaseWeightFormat, showsBase: Bool) throws -> RunSpec {
        var body: [(String, Node)] = [
            ("task", task.resolved),
            ("model", Settings.text(model)),
            ("training", training.resolved),
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
        let settings = Settings.map([("run_id", Settings.text(id)), ("experiment", Settings.text(experiment))] + body)
        return RunSpec(id: id, variant: variant, shape: shape, alphaRule: alphaRule, initialization: initialization,
                       moduleShapes: modules, useRSLoRA: useRSLoRA, base: base, showsBase: showsBase, settingsYAML: try Settings.yaml(settings))
    }
}
