import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// The run was stopped from outside (a progress sink answered `.stop`); it stays unfinished.
public struct RunInterrupted: Error, CustomStringConvertible {
    /// The step whose checkpoint the run saved before stopping (`.checkpointAndStop`); nil for `.stop`.
    public var checkpointStep: Int?

    public var description: String {
        "the run was stopped before it finished; `lorabench run --resume` continues it from its last checkpoint (save_every), else redoes it"
    }
}

/// A run's trained adapter as its variant writes it (peft's layout), with what the task adds:
/// on a pretrained base, a head as peft's `modules_to_save`, the base model's name and the
/// sha256 of its weights, and the folder `PeftModel.from_pretrained` reads; else (the synthetic
/// task) the tensors alone, in one file.
package struct SavedAdapter {
    package var adapter: PeftAdapter
    package var extraTensors: [String: TensorToWrite] = [:]
    package var baseModelSHA256: String?
    package var isPeftFolder: Bool

    package init(plan: any AdapterPlan, model: any TaskModel, method: any AdaptationMethod) throws {
        adapter = try plan.peftAdapter(layers: model.adapters, method: method)
        isPeftFolder = false
        if let pretrained = model as? any PeftExportable {
            try pretrained.describe(&adapter.config)
            extraTensors = pretrained.savedModules.tensors
            baseModelSHA256 = pretrained.baseModelSHA256
            isPeftFolder = true
        }
    }

    /// The peft folder into `directory`, or (the synthetic task) the tensors into `file`; returns
    /// the bytes written (every file of the folder).
    @discardableResult
    package func save(directory: String, file: String, metadata: [String: String]) throws -> Int {
        func size(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        }
        guard isPeftFolder else {
            try Safetensors.write(adapter.tensors, to: file, metadata: metadata)
            return try size(file)
        }
        try PeftCheckpoint.save(adapter, to: directory, extraTensors: extraTensors, baseModelSHA256: baseModelSHA256, metadata: metadata)
        return try FileSystem.contents(of: directory).reduce(0) { $0 + (try size("\(directory)/\($1)")) }
    }
}

/// A run's state every `save_every` steps: the adapter and everything needed to resume training from it.
package struct RunCheckpoint {
    package var step: Int
    package var state: TrainingState
    package var adapter: SavedAdapter
}

/// What training one run produced: its metric rows, how it ended, the adapter (nil when the
/// run failed before its model was built) and, for a GLUE or completion run that completed, its
/// predictions on the eval split at the final evaluation, as predictions.csv's text. A run paused
/// at a rung of successive halving has the outcome it would have if it were stopped there (status
/// `stopped`), and `pausedAt` its step.
package struct TrainedRun {
    package var rows: [MetricRow]
    package var outcome: RunOutcome
    package var adapter: SavedAdapter?
    package var predictionsCSV: String?
    package var pausedAt: Int?
}

/// Trains one run: builds its model, optimizer groups and adaptation method, steps through
/// `trainingStep` (which fixes the order forward/backward → regulariser → optimizer step →
/// allocation → zero grads), logs metrics on a fixed cadence and stops when the run diverges
/// (`Divergence`: the loss, the gradients or the parameters).
///
/// Metrics (split `train` unless noted): `loss` (mean over the logging interval),
/// `learning_rate` (the base group's), `gradient_norm`, `regularizer` (AdaLoRA peft mode),
/// `rank/<module>` (adaptive variants), `elapsed_seconds`; at every evaluation (step 0 unless
/// `eval_at_start: false`, every `eval_interval`, the last step) the task's eval metrics (split
/// `eval`) and `delta_w_norm`, `delta_w_norm/<module>` (‖ΔW‖_F; the unlabelled one over all
/// modules together), and with `validation_examples` the same metrics on the validation split
/// (split `validation`).
package final class RunTrainer {
    package let run: RunSpec
    package let training: TrainingSettings
    package let evalMetrics: [EvalMetric]
    /// Whether the task holds a validation split to evaluate on as well.
    package let evaluatesValidation: Bool

    package init(run: RunSpec, training: TrainingSettings, evalMetrics: [EvalMetric], evaluatesValidation: Bool = false) {
        self.run = run
        self.training = training
        self.evalMetrics = evalMetrics
        self.evaluatesValidation = evaluatesValidation
    }

    /// Never throws for a failing run (that is a `failed` outcome); only `RunInterrupted`.
    /// `resume` continues from a saved state; `checkpoint` receives one every `save_every` steps.
    /// `pausingAt` (a rung of successive halving, before the last step) ends training after that
    /// step with a checkpoint there, from which the run continues exactly as if it had not paused.
    package func train(task: any ExperimentTask, resume: TrainingState? = nil, pausingAt pauseStep: Int? = nil,
                       progress: (ProgressEvent) -> ProgressAnswer, checkpoint: (RunCheckpoint) throws -> Void) throws -> TrainedRun {
        precondition(pauseStep.map { $0 < training.steps && $0 >= (resume?.step ?? 0) } ?? true, "a pause lies between the resumed step and the last")
        let clock = ContinuousClock()
        let start = clock.now
        var previousSeconds = 0.0  // trained before the checkpoint this attempt resumed from
        func inSeconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18 }
        func elapsed() -> Double { previousSeconds + inSeconds(start.duration(to: clock.now)) }
        PeakMemory.reset()
        var log = RunLog()
        // The log's rows already in a checkpoint: each checkpoint saves only the rows after them.
        var rowsInCheckpoints = 0
        var finalPredictions: String?
        var model: (any TaskModel)?
        var method: (any AdaptationMethod)?
        do {
            let plan = run.variant.plan
            let builder = try plan.layerBuilder(for: run.moduleShapes)
            let built = try task.makeModel(seed: run.seed, batchSize: training.batchSize, base: run.base) { module, base in
                guard let builder, run.modules.contains(module.name) else { return nil }
                // Each module gets its own seed stream, so adding a module does not change another's initialisation.
                var rng = SplitMix64(seed: run.seed).derived("adapter/\(module.name)")
                return try builder.adapter(for: module, base: base, seed: rng.next())
            }
            model = built
            let adaptation = try plan.makeMethod(layers: built.adapters)
            method = adaptation
            let optimizer = try run.variant.makeOptimizer(layers: built.adapters, parameters: { built.trainableParameters },
                                                          weightDecay: training.weightDecay)
            let schedule = training.learningRateSchedule
            if let resume {
                log = try resume.restore(model: built, optimizer: optimizer, method: adaptation)
                rowsInCheckpoints = log.rows.count
                previousSeconds = log.elapsedSeconds
            } else {
                log.rows += task.dataMetrics
                if training.evaluatesAtStart { _ = try evaluate(built, step: 0, into: &log) }
            }
            for t in log.stepsCompleted..<(pauseStep ?? training.steps) {
                let step = t + 1
                optimizer.learningRateFactor = schedule.factor(at: t)
                let stepStart = clock.now
                let report = try trainingStep(t, optimizer: optimizer, method: adaptation) { try built.trainOnNextBatch() }
                log.trainingSeconds = (log.trainingSeconds ?? 0) + inSeconds(stepStart.duration(to: clock.now))
                log.trainTokens = (log.trainTokens ?? 0) + built.lastBatchTokenCount
                if let divergence = Divergence(report, step: step) { throw divergence }
                log.stepsCompleted = step
                log.lossSum += Double(report.loss)
                log.lossCount += 1
                if step % training.logInterval == 0 || step == training.steps {
                    let ranks = plan.changesRank ? run.modules.map { ($0, adaptation.ranks[$0] ?? 0) } : nil
                    let regularizer: Float? = plan.hasRegularizer ? report.regularizer : nil
                    log.recordTrain(step: step, learningRate: Double(Float(run.variant.learningRate) * optimizer.learningRateFactor),
                                    gradientNorm: report.gradientNorm, regularizer: regularizer, ranks: ranks, elapsed: elapsed())
                }
                if step % training.evalInterval == 0 || step == training.steps {
                    let predictions = try evaluate(built, step: step, into: &log)
                    if step == training.steps { finalPredictions = predictions }
                }
                func saveCheckpoint() throws {
                    log.elapsedSeconds = elapsed()
                    try checkpoint(RunCheckpoint(
                        step: step, state: TrainingState(model: built, optimizer: optimizer, method: adaptation, log: log,
                                                         rowsSavedBefore: rowsInCheckpoints),
                        adapter: try SavedAdapter(plan: plan, model: built, method: adaptation)))
                    rowsInCheckpoints = log.rows.count
                }
                let onSchedule = training.saveEvery > 0 && step % training.saveEvery == 0
                if onSchedule, step < training.steps { try saveCheckpoint() }
                switch progress(.step(id: run.id, step: step, steps: training.steps, loss: report.loss)) {
                case .more: break
                case .stop: throw RunInterrupted(checkpointStep: nil)
                case .checkpointAndStop where step < training.steps:
                    if !onSchedule { try saveCheckpoint() }
                    throw RunInterrupted(checkpointStep: step)
                case .checkpointAndStop: break  // the last step: finishing is quicker than a checkpoint
                }
                if step == pauseStep, !onSchedule { try saveCheckpoint() }
            }
            log.status = pauseStep == nil ? .completed : .stopped
            if let pauseStep { log.reason = "reached rung step \(pauseStep); successive halving has not yet ranked it" }
        } catch let divergence as Divergence {
            log.status = .diverged
            log.reason = "\(divergence.what) at step \(divergence.step)"
        } catch let interrupted as RunInterrupted {
            throw interrupted
        } catch {
            log.status = .failed
            log.reason = "\(error)"
        }
        let seconds = elapsed()
        let report = model?.parameterReport
        var outcome = RunOutcome(
            runID: run.id, status: log.status, reason: log.reason, stepsCompleted: log.stepsCompleted,
            finalEval: log.status == .completed ? log.lastEval : [:], bestEval: log.bestEval,
            // A paused run keeps its rung's validation metrics: what successive halving ranks it by.
            finalValidation: log.lastValidation.map { [.completed, .stopped].contains(log.status) ? $0 : [:] }, bestValidation: log.bestValidation,
            finalTrainLoss: log.lastTrainLoss, finalRanks: method?.ranks ?? [:],
            trainableParameters: report?.trainable ?? 0, totalParameters: report?.total ?? 0,
            wallSeconds: seconds, stepsPerSecond: seconds > 0 ? Double(log.stepsCompleted) / seconds : 0,
            blasThreads: training.blasThreads, blasKernels: BLASCore.loaded, vectorKernels: VectorKernels.level)
        outcome.trainingSeconds = log.trainingSeconds
        if let trainingSeconds = log.trainingSeconds, let tokens = log.trainTokens, trainingSeconds > 0 {
            outcome.trainTokensPerSecond = Double(tokens) / trainingSeconds
        }
        outcome.peakResidentBytes = PeakMemory.bytes()
        var adapter: SavedAdapter?
        if let model, let method {
            do {
                adapter = try SavedAdapter(plan: run.variant.plan, model: model, method: method)
            } catch {
                outcome.status = .failed
                outcome.reason = "its adapter cannot be saved: \(error)"
            }
        }
        return TrainedRun(rows: log.rows, outcome: outcome, adapter: adapter,
                          predictionsCSV: outcome.status == .completed ? finalPredictions : nil,
                          pausedAt: outcome.status == .stopped ? pauseStep : nil)
    }

    /// Evaluates on the eval split (and the validation split), logs both, and returns the eval
    /// split's predictions as predictions.csv's text (nil for the synthetic task).
    private func evaluate(_ model: any TaskModel, step: Int, into log: inout RunLog) throws -> String? {
        func checked(_ split: EvalSplit) throws -> Evaluation {
            let evaluation = try model.evaluate(split)
            let metrics = evaluation.metrics
            if let bad = evalMetrics.first(where: { !(metrics[$0.name]?.isFinite ?? false) }) {
                throw Divergence(step: step, what: "\(split.rawValue) \(bad.name) is \(metrics[bad.name].map { "\($0)" } ?? "missing")")
            }
            return evaluation
        }
        let evaluation = try checked(.eval)
        let validation = evaluatesValidation ? try checked(.validation).metrics : nil
        let norms = model.adapters.map { ($0.name, frobeniusNorm($0.adapter.deltaWeight())) }
        log.recordEval(step: step, metrics: evaluation.metrics, validation: validation, evalMetrics: evalMetrics, deltaNorms: norms)
        return evaluation.predictionsCSV
    }
}

private struct Divergence: Error {
    /// Beyond any adapter, head or DoRA magnitude a working run reaches (they stay within a few
    /// units); a parameter this large has exploded even while the loss still reads finite.
    static let parameterBound: Float = 1e6

    var step: Int
    var what: String

    init(step: Int, what: String) {
        self.step = step
        self.what = what
    }

    /// The step's divergence, if any: a non-finite loss, regulariser or gradient norm, or a
    /// parameter that is non-finite or past `parameterBound`, for every variant alike.
    init?(_ report: StepReport, step: Int) {
        let (name, magnitude) = report.largestParameter
        if !report.loss.isFinite {
            self.init(step: step, what: "the train loss is \(report.loss)")
        } else if !report.regularizer.isFinite {
            self.init(step: step, what: "the regularizer is \(report.regularizer)")
        } else if !report.gradientNorm.isFinite {
            self.init(step: step, what: "the gradient norm is \(report.gradientNorm)")
        } else if !magnitude.isFinite {
            self.init(step: step, what: "parameter \(name) holds \(magnitude)")
        } else if magnitude > Self.parameterBound {
            self.init(step: step, what: "parameter \(name) reached |x| = \(magnitude) (past \(Self.parameterBound))")
        } else {
            return nil
        }
    }
}

/// What a run has logged so far: its rows, the running bests, and the open logging interval.
/// Checkpoints save it (the rows incrementally: `TrainingState`), so a resumed run writes the
/// rows an uninterrupted one would.
package struct RunLog: Codable {
    package var rows: [MetricRow] = []
    package var status: RunOutcome.Status = .failed
    package var reason = ""
    package var stepsCompleted = 0
    package var lastEval: [String: Double] = [:]
    package var bestEval: [String: Double] = [:]
    /// The same on the validation split; nil without one (and in checkpoints written before it existed).
    package var lastValidation: [String: Double]?
    package var bestValidation: [String: Double]?
    package var lastTrainLoss: Double?
    /// The train losses summed since the last `recordTrain`.
    package var lossSum = 0.0
    package var lossCount = 0
    /// Training time up to the last checkpoint.
    package var elapsedSeconds = 0.0
    /// Seconds inside training steps and the tokens they trained on, up to now (nil in
    /// checkpoints written before they were counted: the resumed run then counts from there).
    package var trainingSeconds: Double?
    package var trainTokens: Int?

    /// Logs the mean loss of the interval and closes it. `regularizer` is logged for AdaLoRA's
    /// peft mode only; `ranks` (module, rank) for adaptive variants.
    package mutating func recordTrain(step: Int, learningRate: Double, gradientNorm: Float, regularizer: Float?,
                              ranks: [(String, Int)]?, elapsed: Double) {
        // The mean of Float losses is a Double; round it to Float so it prints as one.
        let loss = Double(Float(lossSum / Double(lossCount)))
        (lossSum, lossCount) = (0, 0)
        lastTrainLoss = loss
        add(step, "train", "loss", loss)
        add(step, "train", "learning_rate", learningRate)
        add(step, "train", "gradient_norm", Double(gradientNorm))
        if let regularizer { add(step, "train", "regularizer", Double(regularizer)) }
        for (module, rank) in ranks ?? [] { add(step, "train", "rank/\(module)", Double(rank)) }
        add(step, "train", "elapsed_seconds", (elapsed * 1000).rounded() / 1000)
    }

    /// Logs one evaluation: the eval split's metrics, then the validation split's (if any), then
    /// ‖ΔW‖, keeping each split's last and best values.
    package mutating func recordEval(step: Int, metrics: [String: Double], validation: [String: Double]? = nil, evalMetrics: [EvalMetric],
                                     deltaNorms: [(String, Float)]) {
        func record(_ split: EvalSplit, _ metrics: [String: Double], best: inout [String: Double]) -> [String: Double] {
            for metric in evalMetrics {
                let value = metrics[metric.name]!
                add(step, split.rawValue, metric.name, value)
                let previous = best[metric.name]
                if previous == nil || (metric.higherIsBetter ? value > previous! : value < previous!) { best[metric.name] = value }
            }
            return metrics.filter { name, _ in evalMetrics.contains { $0.name == name } }
        }
        var bestEval = self.bestEval
        lastEval = record(.eval, metrics, best: &bestEval)
        self.bestEval = bestEval
        if let validation {
            var best = bestValidation ?? [:]
            lastValidation = record(.validation, validation, best: &best)
            bestValidation = best
        }
        let total = deltaNorms.reduce(0.0) { $0 + Double($1.1) * Double($1.1) }.squareRoot()
        add(step, "train", "delta_w_norm", Double(Float(total)))
        for (module, norm) in deltaNorms { add(step, "train", "delta_w_norm/\(module)", Double(norm)) }
    }

    private mutating func add(_ step: Int, _ split: String, _ metric: String, _ value: Double) {
        rows.append(MetricRow(step: step, split: split, metric: metric, value: value))
    }
}
