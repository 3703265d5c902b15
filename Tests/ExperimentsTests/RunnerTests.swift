import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// Sweeps run in this process: the files they write, bit-for-bit determinism, divergence, and
/// what resuming a finished sweep does.
@Suite struct RunnerTests {
    @Test func aSweepWritesEveryFileWithTheDocumentedColumns() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(sweep: """
          variants: [lora, {name: adalora, mode: peft, tinit: 10, tfinal: 20}]
          ranks: [2, 4]
        """), file: "m.yaml")
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.map(\.status) == [.completed, .completed, .completed, .completed])

        let layout = ResultsLayout(root: "\(directory)/results")
        for run in manifest.runs {
            for file in [layout.settingsFile(run.id), layout.runMetricsFile(run.id), layout.adapterFile(run.id), layout.outcomeFile(run.id)] {
                #expect(FileManager.default.fileExists(atPath: file), "missing \(file)")
            }
        }
        let metrics = try ExperimentSupport.records(layout.metricsFile, droppingTiming: false)
        let metricColumns: [String] = ["run_id", "variant", "rank", "alpha", "seed", "init", "target_modules", "dropout",
                                       "use_rslora", "step", "split", "metric", "value"]
        #expect(metrics[0] == metricColumns)
        let names = Set(metrics.dropFirst().map { "\($0[10])/\($0[11])" })
        #expect(names.isSuperset(of: ["train/loss", "eval/loss", "eval/r2", "train/learning_rate", "train/gradient_norm",
                                      "train/delta_w_norm", "train/delta_w_norm/fc1", "train/elapsed_seconds",
                                      "train/rank/fc1", "train/rank/fc2", "train/regularizer"]))
        // Fixed-rank variants log no rank series.
        #expect(!metrics.contains { $0[1] == "lora" && $0[11].hasPrefix("rank/") })

        let summary = try ExperimentSupport.records(layout.summaryFile)
        let columns: [String] = ["run_id", "variant", "rank", "alpha", "seed", "init", "target_modules", "dropout", "use_rslora",
                                 "status", "reason", "final_eval_loss", "best_eval_loss", "final_eval_r2", "best_eval_r2",
                                 "final_train_loss", "steps_completed", "mean_final_rank", "trainable_parameters",
                                 "trainable_share", "wall_seconds", "steps_per_second", "training_seconds",
                                 "train_tokens_per_second", "peak_rss_mb", "adapter_bytes"]
        #expect(summary[0] == columns)
        #expect(summary.count == 5)
        // The cost of each run: training seconds within the wall time, a token per synthetic
        // example per second of training, a peak resident size, and the adapter file's bytes.
        for (row, run) in zip(summary.dropFirst(), manifest.runs) {
            let outcome = try RunOutcome.decode(Data(contentsOf: URL(fileURLWithPath: layout.outcomeFile(run.id))))
            let trainingSeconds = try #require(outcome.trainingSeconds), tokensPerSecond = try #require(outcome.trainTokensPerSecond)
            #expect(trainingSeconds > 0 && trainingSeconds <= outcome.wallSeconds)
            let examples = Double(manifest.training.steps * manifest.training.batchSize)
            #expect(abs(tokensPerSecond * trainingSeconds - examples) <= 1e-9 * examples)
            #expect(Double(row[columns.firstIndex(of: "peak_rss_mb")!]).map { $0 > 1 } == true)
            let bytes = try FileManager.default.attributesOfItem(atPath: layout.adapterFile(run.id))[.size] as? Int
            #expect(Int(row[columns.firstIndex(of: "adapter_bytes")!]) == bytes)
        }
        // LoRA at r = 2 on 16→16→8: A [2, 16] and B [16, 2] on fc1, A [2, 16] and B [8, 2] on fc2.
        let loraParameters = 2 * 16 + 16 * 2 + 2 * 16 + 8 * 2
        #expect(summary[1][18] == String(loraParameters))
        let adapter = try SafetensorsFile(path: layout.adapterFile(manifest.runs[0].id))
        // The variant's peft layout, as on a pretrained base.
        #expect(adapter.names == ["fc1.lora_A.weight", "fc1.lora_B.weight", "fc2.lora_A.weight", "fc2.lora_B.weight"].map { "base_model.model." + $0 })
    }

    @Test func theSameManifestGivesIdenticalNumbers() throws {
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(sweep: """
          variants: [lora, loraplus, dora, {name: adalora, mode: svd-prune, interval: 10, start_step: 20}]
          ranks: [4]
          dropout: 0.1
        """), file: "m.yaml")
        let first = try ExperimentSupport.temporaryDirectory(), second = try ExperimentSupport.temporaryDirectory()
        defer { for directory in [first, second] { try? FileManager.default.removeItem(atPath: directory) } }
        try ExperimentSupport.run(manifest, into: first)
        try ExperimentSupport.run(manifest, into: second)
        let a = ResultsLayout(root: "\(first)/results"), b = ResultsLayout(root: "\(second)/results")
        #expect(try ExperimentSupport.records(a.metricsFile) == ExperimentSupport.records(b.metricsFile))
        #expect(try ExperimentSupport.summaryWithoutTiming(a.summaryFile) == ExperimentSupport.summaryWithoutTiming(b.summaryFile))
        for run in manifest.runs {
            #expect(FileManager.default.contents(atPath: a.adapterFile(run.id)) == FileManager.default.contents(atPath: b.adapterFile(run.id)))
        }
    }

    @Test func aDivergingRunIsRecordedAndTheSweepGoesOn() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(sweep: """
          variants: [{name: lora, label: huge-lr, learning_rate: 1e30}, lora]
          ranks: [4]
        """), file: "m.yaml")
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.map(\.status) == [.diverged, .completed])
        #expect(outcomes[0].reason.hasPrefix("parameter ") && outcomes[0].reason.hasSuffix("at step 1"))
        #expect(outcomes[0].stepsCompleted == 0)
        #expect(outcomes[0].finalEval.isEmpty)

        let summary = try ExperimentSupport.records("\(directory)/results/summary.csv")
        #expect(summary[1][9...11] == ["diverged", outcomes[0].reason, ""])
        #expect(summary[2][9] == "completed")
        // The rows logged before the divergence are kept: the step-0 evaluation.
        let metrics = try ExperimentSupport.records("\(directory)/results/metrics.csv")
        #expect(metrics.contains { $0[0] == outcomes[0].runID && $0[9] == "0" && $0[11] == "loss" })
    }

    @Test func resumingAFinishedSweepRunsNothing() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(), file: "m.yaml")
        let first = try ExperimentSupport.run(manifest, into: directory)
        let metrics = try String(contentsOfFile: "\(directory)/results/metrics.csv", encoding: .utf8)
        #expect(try ExperimentSupport.run(manifest, into: directory, resume: true) == first)
        #expect(try String(contentsOfFile: "\(directory)/results/metrics.csv", encoding: .utf8) == metrics)
    }

    /// `eval_at_start: false` drops the step-0 evaluation and nothing else: the later evaluations
    /// read the same, and only the runs that skip it get new ids.
    @Test func skippingTheStartEvaluationDropsOnlyStepZero() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sweep = "  variants: [lora, dora]\n  ranks: [2]"
        let always = try Manifest(yaml: ExperimentSupport.manifest(sweep: sweep), file: "m.yaml")
        let stated = try Manifest(yaml: ExperimentSupport.manifest(sweep: sweep).replacingOccurrences(
            of: "  eval_interval: 20\n", with: "  eval_interval: 20\n  eval_at_start: true\n"), file: "m.yaml")
        let skipping = try Manifest(yaml: ExperimentSupport.manifest(sweep: sweep).replacingOccurrences(
            of: "  eval_interval: 20\n", with: "  eval_interval: 20\n  eval_at_start: false\n"), file: "m.yaml")
        #expect(stated.runs.map(\.id) == always.runs.map(\.id))
        #expect(Set(skipping.runs.map(\.id)).isDisjoint(with: always.runs.map(\.id)))

        _ = try ExperimentSupport.run(always, into: "\(directory)/always")
        _ = try ExperimentSupport.run(skipping, into: "\(directory)/skipping")
        // [variant, step, split, metric, value] of every evaluation row.
        func evaluations(_ folder: String) throws -> [[String]] {
            try ExperimentSupport.records("\(directory)/\(folder)/results/metrics.csv").dropFirst()
                .filter { $0[10] == "eval" }.map { [$0[1], $0[9], $0[10], $0[11], $0[12]] }
        }
        let withStart = try evaluations("always"), withoutStart = try evaluations("skipping")
        #expect(withStart.contains { $0[1] == "0" })
        #expect(!withoutStart.contains { $0[1] == "0" })
        #expect(withoutStart == withStart.filter { $0[1] != "0" })
        #expect(Set(withoutStart.map { $0[1] }) == ["20", "40", "60"])
    }

    /// Every run is stopped once at step 30, after its step-20 checkpoint; `--resume` continues
    /// each from that checkpoint (dropout masks, AdamW moments, AdaLoRA's importance averages
    /// and rank pattern, svd-prune's shrunk factors, the data order) and the sweep ends with
    /// exactly the numbers and adapters of an uninterrupted sweep.
    @Test func aStoppedRunResumesFromItsLastCheckpointExactly() throws {
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(sweep: """
          variants: [lora, dora, {name: adalora, mode: peft, tinit: 10, tfinal: 20}, {name: adalora, mode: svd-prune, interval: 10, start_step: 20}]
          ranks: [4]
          dropout: 0.1
        """).replacingOccurrences(of: "  log_interval: 10", with: "  log_interval: 10\n  save_every: 20"), file: "m.yaml")
        let whole = try ExperimentSupport.temporaryDirectory(), stopped = try ExperimentSupport.temporaryDirectory()
        defer { for directory in [whole, stopped] { try? FileManager.default.removeItem(atPath: directory) } }
        try ExperimentSupport.run(manifest, into: whole)

        let stopper = StopOnceAtStep(30)
        let runner = ExperimentRunner(manifest: manifest, outputDirectory: "\(stopped)/results")
        var attempts = 0
        while true {
            attempts += 1
            do {
                _ = try runner.run(options: SweepOptions(resume: attempts > 1), progress: stopper)
                break
            } catch is RunInterrupted {
                #expect(attempts <= manifest.runs.count, "every run is stopped once")
            }
        }
        #expect(stopper.resumedAt == Dictionary(uniqueKeysWithValues: manifest.runs.map { ($0.id, 20) }))

        let a = ResultsLayout(root: "\(whole)/results"), b = ResultsLayout(root: "\(stopped)/results")
        #expect(try ExperimentSupport.records(a.metricsFile) == ExperimentSupport.records(b.metricsFile))
        #expect(try ExperimentSupport.summaryWithoutTiming(a.summaryFile) == ExperimentSupport.summaryWithoutTiming(b.summaryFile))
        for run in manifest.runs {
            #expect(FileManager.default.contents(atPath: a.adapterFile(run.id)) == FileManager.default.contents(atPath: b.adapterFile(run.id)),
                    "\(run.id): the resumed run's adapter differs")
            #expect(b.checkpointSteps(run.id) == [20, 40])
            for step in [20, 40] {
                let files = try FileManager.default.contentsOfDirectory(atPath: b.checkpointDirectory(run.id, step: step)).sorted()
                #expect(files == ["adapter.safetensors", "training_state.safetensors"])
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: b.checkpointsDirectory(run.id)).sorted() == ["step-20", "step-40"])
        }
    }

    @Test func aSecondSweepIntoTheSameFolderNeedsResume() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(), file: "m.yaml")
        try ExperimentSupport.run(manifest, into: directory)
        #expect(throws: SweepError.existingResults(directory: "\(directory)/results", runs: 2)) {
            try ExperimentSupport.run(manifest, into: directory)
        }
    }

    @Test func warmUpAndDecayShapeTheLearningRate() {
        let cosine = LearningRateSchedule(shape: .cosine, warmupSteps: 4, totalSteps: 12)
        #expect((0..<4).map { cosine.factor(at: $0) } == [0.25, 0.5, 0.75, 1] as [Float])
        #expect(cosine.factor(at: 4) == 1)
        #expect(abs(cosine.factor(at: 8) - 0.5) < 1e-6)
        let linear = LearningRateSchedule(shape: .linear, warmupSteps: 0, totalSteps: 10)
        #expect(linear.factor(at: 5) == 0.5)
    }
}

/// Stops each run once, at `step`, and records where runs resumed.
final class StopOnceAtStep: ProgressSink {
    let step: Int
    private(set) var stopped: Set<String> = []
    private(set) var resumedAt: [String: Int] = [:]

    init(_ step: Int) { self.step = step }

    func handle(_ event: ProgressEvent) -> ProgressAnswer {
        switch event {
        case let .runResumed(id, step):
            resumedAt[id] = step
        case let .step(id, step, _, _) where step == self.step && !stopped.contains(id):
            stopped.insert(id)
            return .stop
        default:
            break
        }
        return .more
    }
}
