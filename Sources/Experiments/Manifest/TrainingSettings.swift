import Foundation
import Yams
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// The manifest's `training:` block: one set of optimisation settings shared by every run.
public struct TrainingSettings: Equatable {
    public static let keys = ["learning_rate", "steps", "batch_size", "eval_interval", "log_interval", "weight_decay",
                              "warmup_steps", "schedule", "save_every", "blas_threads", "eval_at_start"]

    /// AdamW's learning rate: one value, or an axis of several (`learning_rate: [1e-4, 3e-4]`),
    /// each its own run. A variant's own `learning_rate` replaces it.
    public var learningRates: [Double]
    /// Optimizer steps per run.
    public var steps: Int
    public var batchSize = 64
    /// Evaluate every this many steps (and at step 0 and the last step).
    public var evalInterval: Int
    /// Whether to evaluate the untrained model at step 0. Every run of a seed starts from the same
    /// function (the adapters start as the identity), so a large sweep may skip it: on SST-2 it
    /// is about a quarter of a 60-step run.
    public var evaluatesAtStart = true
    /// Log train metrics every this many steps; the train loss is the mean since the last log.
    public var logInterval = 10
    /// AdamW's decoupled weight decay.
    public var weightDecay = 0.0
    public var warmupSteps = 0
    public var schedule: LearningRateSchedule.Shape = .constant
    /// Also save the adapter every this many steps (0: only the final adapter).
    public var saveEvery = 0
    /// OpenBLAS threads per run. Part of the settings because OpenBLAS's sgemm rounds differently
    /// with another thread count: fixing it is what makes a manifest's numbers reproducible bit
    /// for bit, whatever `--jobs` is.
    public var blasThreads = 1
    /// Whether the manifest sets `blas_threads` (a cluster submission may choose it otherwise).
    public var fixesBLASThreads = false

    /// `defaultBLASThreads` applies when the manifest has no `blas_threads` key.
    package init(_ node: ManifestNode, defaultBLASThreads: Int = 1) throws {
        let block = try node.mapping(keys: Self.keys)
        learningRates = try Self.parseLearningRates(block.required("learning_rate", allowed: Self.learningRateAllowed))
        steps = try block.required("steps", allowed: "an integer ≥ 1").int(allowed: "an integer ≥ 1", in: 1...Int.max)
        evalInterval = max(1, steps / 10)
        if let value = block.optional("batch_size") { batchSize = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("eval_interval") { evalInterval = try value.int(allowed: "an integer ≥ 1 (steps)", in: 1...Int.max) }
        if let value = block.optional("eval_at_start") { evaluatesAtStart = try value.bool() }
        if let value = block.optional("log_interval") { logInterval = try value.int(allowed: "an integer ≥ 1 (steps)", in: 1...Int.max) }
        if let value = block.optional("weight_decay") { weightDecay = try value.number(allowed: "a number ≥ 0", where: { $0 >= 0 }) }
        if let value = block.optional("warmup_steps") {
            warmupSteps = try value.int(allowed: "an integer from 0 to steps (\(steps))", in: 0...steps)
        }
        if let value = block.optional("schedule") {
            schedule = LearningRateSchedule.Shape(rawValue: try value.choice(LearningRateSchedule.Shape.allCases.map(\.rawValue)))!
        }
        if let value = block.optional("save_every") {
            saveEvery = try value.int(allowed: "an integer ≥ 0 (steps; 0 saves only the final adapter)", in: 0...Int.max)
        }
        blasThreads = defaultBLASThreads
        if let value = block.optional("blas_threads") {
            blasThreads = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max)
            fixesBLASThreads = true
        }
    }

    package static let learningRateAllowed = "a number > 0 (e.g. 1e-3), or a list of them (an axis: each value its own run)"

    /// `1e-3` or `[1e-4, 3e-4, 1e-3]`: distinct numbers > 0.
    package static func parseLearningRates(_ node: ManifestNode) throws -> [Double] {
        let nodes = try node.axis(allowed: learningRateAllowed)
        let rates = try nodes.map { try $0.number(allowed: "a number > 0 (e.g. 1e-3)", where: { $0 > 0 }) }
        var seen = Set<Double>()
        for (rate, node) in zip(rates, nodes) where !seen.insert(rate).inserted {
            throw node.error(allowed: "distinct values", found: "learning rate \(formatNumber(rate)) a second time")
        }
        return rates
    }

    /// The learning rate when there is one; with an axis, its first value.
    public var learningRate: Double { learningRates[0] }

    public var learningRateSchedule: LearningRateSchedule {
        LearningRateSchedule(shape: schedule, warmupSteps: warmupSteps, totalSteps: steps)
    }

    /// The block of one run's settings.yaml (hashed into its id). `learning_rate` is the run's
    /// own rate when it comes from this block (so `[1e-3]` and `1e-3` give the same ids), and
    /// the block's value as written when the variant sets its own.
    public func resolved(runLearningRate: Double?) -> Node {
        let learningRate = runLearningRate.map(Settings.number)
            ?? (learningRates.count == 1 ? Settings.number(learningRates[0]) : Settings.list(learningRates.map(formatNumber)))
        // eval_at_start appears only when false, so the ids of runs that evaluate at step 0 stay as they were.
        return Settings.map([
            ("learning_rate", learningRate),
            ("steps", Settings.int(steps)),
            ("batch_size", Settings.int(batchSize)),
            ("eval_interval", Settings.int(evalInterval)),
        ] + (evaluatesAtStart ? [] : [("eval_at_start", Settings.bool(false))]) + [
            ("log_interval", Settings.int(logInterval)),
            ("weight_decay", Settings.number(weightDecay)),
            ("warmup_steps", Settings.int(warmupSteps)),
            ("schedule", Settings.text(schedule.rawValue)),
            ("save_every", Settings.int(saveEvery)),
            ("blas_threads", Settings.int(blasThreads)),
        ])
    }
}

/// The learning-rate multiplier for each step: linear warm-up, then constant, linear decay to 0
/// or cosine decay to 0 (the shapes of transformers' `get_*_schedule_with_warmup`).
public struct LearningRateSchedule: Equatable, Sendable {
    public enum Shape: String, CaseIterable, Sendable {
        case constant, linear, cosine
    }

    public var shape: Shape
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(shape: Shape, warmupSteps: Int, totalSteps: Int) {
        self.shape = shape
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The factor for step t (0-based). Warm-up uses (t + 1)/W so the first step already learns.
    public func factor(at t: Int) -> Float {
        if t < warmupSteps { return Float(t + 1) / Float(warmupSteps) }
        let decaySteps = totalSteps - warmupSteps
        guard decaySteps > 0 else { return 1 }
        let progress = Double(t - warmupSteps) / Double(decaySteps)
        switch shape {
        case .constant: return 1
        case .linear: return Float(1 - progress)
        case .cosine: return Float(0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}
