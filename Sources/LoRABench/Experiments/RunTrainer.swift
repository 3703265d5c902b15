import Foundation

/// The run was stopped from outside (a progress sink answered `.stop`); it stays unfinished.
public struct RunInterrupted: Error, CustomStringConvertible {
    public var description: String { "the run was stopped before it finished; `lorabench run --resume` redoes it" }
}

/// What training one run produced: its metric rows, how it ended, and the adapter: in peft's
/// layout for a model on a pretrained base (`PeftExportable`), else as runner tensors.
struct TrainedRun {
    var rows: [MetricRow]
    var outcome: RunOutcome
    var adapter: [String: TensorToWrite]
    var peftAdapter: PeftExport?
}

/// Trains one run: builds its model, optimizer groups and adaptation method, steps through
/// `trainingStep` (which fixes the order forward/backward → regulariser → optimizer step →
/// allocation → zero grads), logs metrics on a fixed cadence and stops on a non-finite loss.
///
/// Metrics (split `train` unless noted): `loss` (mean over the logging interval),
/// `learning_rate` (the base group's), `gradient_norm`, `regularizer` (AdaLoRA peft mode),
/// `rank/<module>` (adaptive variants), `elapsed_seconds`; at every evaluation (step 0, every
/// `eval_interval`, the last step) the task's eval metrics (split `eval`) and `delta_w_norm`,
/// `delta_w_norm/<module>` (‖ΔW‖_F; the unlabelled one over all modules together).
final class RunTrainer {
    let run: RunSpec
    let training: TrainingSettings
    let evalMetrics: [EvalMetric]

    init(run: RunSpec, training: TrainingSettings, evalMetrics: [EvalMetric]) {
        self.run = run
        self.training = training
        self.evalMetrics = evalMetrics
    }

    /// Never throws for a failing run (that is a `failed` outcome); only `RunInterrupted`.
    func train(task: any ExperimentTask, progress: (ProgressEvent) -> ProgressAnswer,
               checkpoint: (Int, [String: TensorToWrite]) throws -> Void) throws -> TrainedRun {
        let clock = ContinuousClock()
        let start = clock.now
        func elapsed() -> Double {
            let duration = start.duration(to: clock.now)
            return Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        }
        var log = RunLog(run: run, evalMetrics: evalMetrics)
        var model: (any TaskModel)?
        var method: (any AdaptationMethod)?
        do {
            let built = try task.makeModel(seed: run.seed, batchSize: training.batchSize, adapt: makeAdapter)
            model = built
            let adaptation = try run.variant.makeMethod(layers: built.adapters)
            method = adaptation
            let optimizer = AdamW(groups: run.variant.grouping.groups(for: built.trainableParameters,
                                                                      learningRate: Float(run.variant.learningRate),
                                                                      weightDecay: Float(training.weightDecay)))
            let schedule = training.learningRateSchedule
            try evaluate(built, step: 0, into: &log)
            var lossSum = 0.0, lossCount = 0
            for t in 0..<training.steps {
                let step = t + 1
                optimizer.learningRateFactor = schedule.factor(at: t)
                let report = try trainingStep(t, optimizer: optimizer, method: adaptation) { try built.trainOnNextBatch() }
                guard report.loss.isFinite, report.regularizer.isFinite else {
                    throw Divergence(step: step, what: report.loss.isFinite ? "the regularizer is \(report.regularizer)" : "the train loss is \(report.loss)")
                }
                log.stepsCompleted = step
                lossSum += Double(report.loss)
                lossCount += 1
                if step % training.logInterval == 0 || step == training.steps {
                    log.recordTrain(step: step, meanLoss: lossSum / Double(lossCount),
                                    learningRate: Double(Float(run.variant.learningRate) * optimizer.learningRateFactor),
                                    gradientNorm: report.gradientNorm, regularizer: report.regularizer,
                                    ranks: run.variant.isAdaptive ? adaptation.ranks : nil, elapsed: elapsed())
                    (lossSum, lossCount) = (0, 0)
                }
                if step % training.evalInterval == 0 || step == training.steps { try evaluate(built, step: step, into: &log) }
                if training.saveEvery > 0, step % training.saveEvery == 0, step < training.steps {
                    try checkpoint(step, adapterTensors(built))
                }
                if progress(.step(id: run.id, step: step, steps: training.steps, loss: report.loss)) == .stop {
                    throw RunInterrupted()
                }
            }
            log.status = .completed
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
        let outcome = RunOutcome(
            runID: run.id, status: log.status, reason: log.reason, stepsCompleted: log.stepsCompleted,
            finalEval: log.status == .completed ? log.lastEval : [:], bestEval: log.bestEval,
            finalTrainLoss: log.lastTrainLoss, finalRanks: method?.ranks ?? [:],
            trainableParameters: report?.trainable ?? 0, totalParameters: report?.total ?? 0,
            wallSeconds: seconds, stepsPerSecond: seconds > 0 ? Double(log.stepsCompleted) / seconds : 0,
            blasThreads: training.blasThreads)
        if let exportable = model as? any PeftExportable, let method {
            return TrainedRun(rows: log.rows, outcome: outcome, adapter: [:],
                              peftAdapter: PeftExport(run: run, model: exportable, method: method))
        }
        return TrainedRun(rows: log.rows, outcome: outcome, adapter: model.map(adapterTensors) ?? [:], peftAdapter: nil)
    }

    /// The run's adapter on targeted modules; each gets its own seed stream, so adding a module
    /// does not change another's initialisation.
    private func makeAdapter(module: ModuleShape, base: FrozenLinear) throws -> (any Adapter)? {
        guard let kind = run.variant.spec.adapterKind, run.modules.contains(module.name) else { return nil }
        var rng = SplitMix64(seed: run.seed).derived("adapter/\(module.name)")
        return try kind.make(base: base, config: run.adapterConfig, seed: rng.next())
    }

    private func evaluate(_ model: any TaskModel, step: Int, into log: inout RunLog) throws {
        let metrics = try model.evaluate()
        if let bad = evalMetrics.first(where: { !(metrics[$0.name]?.isFinite ?? false) }) {
            throw Divergence(step: step, what: "eval \(bad.name) is \(metrics[bad.name].map { "\($0)" } ?? "missing")")
        }
        let norms = model.adapters.map { ($0.name, frobeniusNorm($0.adapter.deltaWeight())) }
        log.recordEval(step: step, metrics: metrics, deltaNorms: norms)
    }

    /// `<module>.<tensor>`: lora_A [r, in], lora_B [out, r], lora_E [r, 1], and 1-D vectors
    /// (DoRA's lora_magnitude_vector [out]) as torch stores them.
    private func adapterTensors(_ model: any TaskModel) -> [String: TensorToWrite] {
        var tensors: [String: TensorToWrite] = [:]
        for named in model.adapters {
            for parameter in named.adapter.parameters {
                let shape = parameter.role.isVector ? [parameter.count] : parameter.value.shape
                tensors["\(named.name).\(parameter.name)"] = TensorToWrite(parameter.value, shape: shape)
            }
        }
        return tensors
    }
}

private struct Divergence: Error {
    var step: Int
    var what: String
}

/// The rows of one run and the running bests, in the order they are logged.
private struct RunLog {
    let run: RunSpec
    let evalMetrics: [EvalMetric]
    var rows: [MetricRow] = []
    var status: RunOutcome.Status = .failed
    var reason = ""
    var stepsCompleted = 0
    var lastEval: [String: Double] = [:]
    var bestEval: [String: Double] = [:]
    var lastTrainLoss: Double?

    init(run: RunSpec, evalMetrics: [EvalMetric]) {
        self.run = run
        self.evalMetrics = evalMetrics
    }

    mutating func recordTrain(step: Int, meanLoss: Double, learningRate: Double, gradientNorm: Float, regularizer: Float,
                              ranks: [String: Int]?, elapsed: Double) {
        // The mean of Float losses is a Double; round it to Float so it prints as one.
        let loss = Double(Float(meanLoss))
        lastTrainLoss = loss
        add(step, "train", "loss", loss)
        add(step, "train", "learning_rate", learningRate)
        add(step, "train", "gradient_norm", Double(gradientNorm))
        if case .adaloraPeft = run.variant.method { add(step, "train", "regularizer", Double(regularizer)) }
        if let ranks {
            for module in run.modules { add(step, "train", "rank/\(module)", Double(ranks[module] ?? 0)) }
        }
        add(step, "train", "elapsed_seconds", (elapsed * 1000).rounded() / 1000)
    }

    mutating func recordEval(step: Int, metrics: [String: Double], deltaNorms: [(String, Float)]) {
        for metric in evalMetrics {
            let value = metrics[metric.name]!
            add(step, "eval", metric.name, value)
            let best = bestEval[metric.name]
            if best == nil || (metric.higherIsBetter ? value > best! : value < best!) { bestEval[metric.name] = value }
        }
        lastEval = metrics.filter { name, _ in evalMetrics.contains { $0.name == name } }
        let total = deltaNorms.reduce(0.0) { $0 + Double($1.1) * Double($1.1) }.squareRoot()
        add(step, "train", "delta_w_norm", Double(Float(total)))
        for (module, norm) in deltaNorms { add(step, "train", "delta_w_norm/\(module)", Double(norm)) }
    }

    private mutating func add(_ step: Int, _ split: String, _ metric: String, _ value: Double) {
        rows.append(MetricRow(step: step, split: split, metric: metric, value: value))
    }
}
