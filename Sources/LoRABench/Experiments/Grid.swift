import Foundation
import Yams

/// One run of a sweep: a point of the axes' Cartesian product with every rule resolved.
public struct RunSpec {
    /// The axis columns of the experiment's metrics.csv and summary.csv, in order.
    public static let axisColumns = ["run_id", "variant", "rank", "alpha", "seed", "init", "target_modules", "dropout", "use_rslora"]

    /// `<variant>-r<rank>-a<alpha>-<init>-s<seed>-<hash>`: the readable axes, then six hex digits
    /// of SHA-256 over every other resolved setting (task, training, variant details), so an id
    /// is stable across manifest edits that do not change the run and new when anything does.
    public let id: String
    public let variant: ResolvedVariant
    /// 0 for `head_only`.
    public let rank: Int
    /// α as the manifest wrote it (`2r`), the `alpha` column; `alpha` is its value at this rank.
    /// nil (and α = 0) for `head_only`.
    public let alphaRule: ScaledValue?
    public let alpha: Double
    public let seed: UInt64
    /// nil when the variant has its own initialisation (AdaLoRA peft mode).
    public let initialization: AdapterInit?
    /// The targets as written; `modules` are the module names they select.
    public let targetModules: [String]
    public let modules: [String]
    public let dropout: Double
    public let useRSLoRA: Bool
    /// settings.yaml: every resolved setting of the run.
    public let settingsYAML: String

    /// The run's values for `axisColumns`. An axis that does not apply to the variant is `n/a`.
    public var axisValues: [String] {
        guard let alphaRule else { return [id, variant.label, String(rank), "n/a", String(seed), "n/a", "n/a", "n/a", "n/a"] }
        let rslora: String = variant.spec.usesFactorInit ? String(useRSLoRA) : "n/a"
        return [id, variant.label, String(rank), alphaRule.text, String(seed), initialization?.rawValue ?? "n/a",
         targetModules.joined(separator: "+"), formatNumber(dropout), rslora]
    }

    public var adapterConfig: AdapterConfig {
        AdapterConfig(rank: variant.adapterRank, alpha: Float(alpha), useRSLoRA: useRSLoRA,
                      initialization: initialization ?? .kaiming, dropout: Float(dropout))
    }

    /// The factor on the low-rank product, as the adapter computes it (0 for `head_only`: no adapter).
    public var scaling: Float {
        guard variant.spec.hasAdapters else { return 0 }
        return variant.spec.usesFactorInit ? adapterConfig.scaling : AdaLoRALayer.scaling(alpha: Float(alpha), initialRank: variant.adapterRank)
    }
}

/// Expands a manifest's axes into runs, validating each against the task's modules.
enum Grid {
    /// Variants outermost and seeds innermost, so one configuration's seeds run back to back.
    static func expand(experiment: String, task: any TaskSettings, model: String, training: TrainingSettings,
                       sweep: SweepAxes) throws -> [RunSpec] {
        var runs: [RunSpec] = []
        var ids = Set<String>()
        for variant in sweep.variants {
            guard variant.hasAdapters else {
                runs += try headOnlyRuns(variant, experiment: experiment, task: task, model: model, training: training, seeds: sweep.seeds)
                continue
            }
            // Axes a variant ignores collapse to one value instead of repeating identical runs.
            let inits: [AdapterInit?] = variant.usesFactorInit ? sweep.inits : [nil]
            let rsloraValues = variant.usesFactorInit ? sweep.useRSLoRA : [false]
            for (rank, rankNode) in zip(sweep.ranks, sweep.rankNodes) {
                let resolved = try variant.resolve(rank: rank, training: training)
                for alphaRule in sweep.alphas {
                    for initialization in inits {
                        for targets in sweep.targetModules {
                            let modules = task.modules.filter { module in targets.contains(where: module.matches) }
                            try checkRank(resolved, rank: rank, fits: modules, at: rankNode)
                            for dropout in sweep.dropouts {
                                for useRSLoRA in rsloraValues {
                                    for seed in sweep.seeds {
                                        let run = try makeRun(experiment: experiment, task: task, model: model, training: training,
                                                              variant: resolved, rank: rank, alphaRule: alphaRule, seed: seed,
                                                              initialization: initialization, targets: targets,
                                                              modules: modules.map(\.name), dropout: dropout, useRSLoRA: useRSLoRA)
                                        if ids.insert(run.id).inserted { runs.append(run) }
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

    /// One run per seed: the rank, α, init, target-module, dropout and rsLoRA axes do not apply.
    private static func headOnlyRuns(_ variant: VariantSpec, experiment: String, task: any TaskSettings, model: String,
                                     training: TrainingSettings, seeds: [UInt64]) throws -> [RunSpec] {
        guard task.hasHead else {
            throw variant.location.error(allowed: "an adapter variant (lora, loraplus, dora, adalora): task \(task.name) has no trainable head",
                                         found: "head_only")
        }
        let resolved = try variant.resolve(rank: 0, training: training)
        return try seeds.map { seed in
            try makeRun(experiment: experiment, task: task, model: model, training: training, variant: resolved, rank: 0,
                        alphaRule: nil, seed: seed, initialization: nil, targets: [], modules: [], dropout: 0, useRSLoRA: false)
        }
    }

    private static func checkRank(_ variant: ResolvedVariant, rank: Int, fits modules: [ModuleShape], at node: ManifestNode) throws {
        guard let tight = modules.first(where: { variant.adapterRank > $0.maxRank }) else { return }
        let what = variant.adapterRank == rank ? "rank \(rank)" : "rank \(rank) (\(variant.label) builds rank-\(variant.adapterRank) adapters)"
        throw node.error(allowed: "ranks up to \(tight.maxRank): module \(tight.name) is \(tight.outFeatures)x\(tight.inFeatures)",
                         found: what)
    }

    private static func makeRun(experiment: String, task: any TaskSettings, model: String, training: TrainingSettings,
                                variant: ResolvedVariant, rank: Int, alphaRule: ScaledValue?, seed: UInt64,
                                initialization: AdapterInit?, targets: [String], modules: [String], dropout: Double,
                                useRSLoRA: Bool) throws -> RunSpec {
        let alpha = alphaRule?.value(rank: rank) ?? 0
        var body: [(String, Node)] = [
            ("task", task.resolved),
            ("model", Settings.text(model)),
            ("training", training.resolved),
            ("variant", variant.resolved),
            ("rank", Settings.int(rank)),
        ]
        var readable: [String?] = [variant.label]
        if let alphaRule {
            body += [
                ("alpha", Settings.number(alpha)),
                ("alpha_rule", Settings.text(alphaRule.text)),
                ("seed", Settings.int(Int(seed))),
                ("init", Settings.text(initialization?.rawValue ?? "n/a")),
                ("target_modules", Settings.list(modules)),
                ("dropout", Settings.number(dropout)),
            ]
            if variant.spec.usesFactorInit { body.append(("use_rslora", Settings.bool(useRSLoRA))) }
            readable += ["r\(rank)", "a\(formatNumber(alpha))", initialization?.rawValue]
        } else {
            body.append(("seed", Settings.int(Int(seed))))
        }
        let hash = String(SHA256.hex(of: Data(try Settings.yaml(Settings.map(body)).utf8)).prefix(6))
        readable += ["s\(seed)", hash]
        let id = readable.compactMap { $0 }.joined(separator: "-")
        let settings = Settings.map([("run_id", Settings.text(id)), ("experiment", Settings.text(experiment))] + body)
        return RunSpec(id: id, variant: variant, rank: rank, alphaRule: alphaRule, alpha: alpha, seed: seed,
                       initialization: initialization, targetModules: targets, modules: modules, dropout: dropout,
                       useRSLoRA: useRSLoRA, settingsYAML: try Settings.yaml(settings))
    }
}
