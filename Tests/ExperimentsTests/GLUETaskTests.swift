import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchModels
@testable import LoRABenchInterop
@testable import LoRABenchExperiments
@testable import LoRABenchReport
import LoRABenchTestSupport
import Testing

/// The `sst2` task on `minilm`: a tiny sweep end to end (accuracy rows, peft-layout adapters that
/// load back with the same predictions), the peft configs of every variant, and the errors a
/// manifest or a missing model gives.
@Suite struct GLUETaskTests {
    static let dataDirectory = Fixtures.dataDirectory

    /// A sweep small enough for a debug build (whose unoptimised GELU dominates): 64 training
    /// sentences cut to 8 tokens, batches of 4, 8 dev sentences, 2 steps.
    static func manifest(variants: String = "[head_only, lora]", extraTask: String = "", extraSweep: String = "") throws -> Manifest {
        try Manifest(yaml: """
        experiment: tiny-sst2
        task: {name: sst2, data_dir: '\(dataDirectory)', max_train_examples: 64, eval_examples: 8, max_length: 8\(extraTask)}
        model: minilm
        training: {learning_rate: 1e-2, steps: 2, batch_size: 4, eval_interval: 2, log_interval: 1, save_every: 1}
        sweep:
          variants: \(variants)
          ranks: [4]
          target_modules: [query, value]
        \(extraSweep)
        """, file: "m.yaml")
    }

    /// A fresh encoder carrying the adapter and head saved in `directory`.
    static func reloaded(_ directory: String, experiment: GLUEExperiment) throws -> BertEncoder {
        let base = experiment.base as! BertClassifierBase
        return try AdaptedModel(checkpoint: PeftCheckpoint.load(directory), config: base.config, weights: base.weights,
                                baseModelSHA256: base.files.weightsSHA256).encoder
    }

    /// Issue 25 U9, end to end: 6 training sentences left and batches of 4 is fine; 3 left is a
    /// failed run whose reason names the keys, never a silently smaller batch.
    @Test func aRunWithFewerTrainingExamplesThanABatchFailsNamingTheKeys() throws {
        _ = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: """
            experiment: tiny-sst2
            task: {name: sst2, data_dir: '\(Self.dataDirectory)', max_train_examples: 3, validation_examples: 4, eval_examples: 8, max_length: 8}
            training: {learning_rate: 1e-2, steps: 2, batch_size: 4}
            sweep: {variants: [lora], ranks: [4], target_modules: [query, value]}
            """, file: "m.yaml")
        let outcome = try #require(try ExperimentSupport.run(manifest, into: directory).first)
        #expect(outcome.status == .failed)
        #expect(outcome.reason.contains("3 training example(s) are left after task.validation_examples (4) and task.max_train_examples (3)"),
                "\(outcome.reason)")
        #expect(outcome.reason.contains("fewer than training.batch_size (4)"), "\(outcome.reason)")
    }

    @Test func aTinySweepWritesAccuracyAndAdaptersThatLoadBack() throws {
        let files = try minilmFilesOrSkip()
        let manifest = try Self.manifest()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.map(\.status) == [.completed, .completed])

        let layout = ResultsLayout(root: "\(directory)/results")
        let metrics = try ExperimentSupport.records(layout.metricsFile)
        for run in manifest.runs {
            let accuracy = metrics.filter { $0[0] == run.id && $0[10] == "eval" && $0[11] == "accuracy" }
            #expect(accuracy.map { $0[9] } == ["0", "2"], "\(run.id)")
        }
        let summary = try CSVTable(contentsOf: layout.summaryFile, producer: "test")
        let column = { (name: String) in summary.header.firstIndex(of: name)! }
        #expect(summary.records.map { $0.fields[column("variant")] } == ["head_only", "lora"])
        #expect(summary.records.map { $0.fields[column("rank")] } == ["0", "4"])
        // The head alone: W [2, 384] and b [2].
        #expect(summary.records[0].fields[column("trainable_parameters")] == "770")

        // The report leads with accuracy and draws the rank-0 baseline as a dashed line, not a
        // point on the log₂ rank axis.
        try Report.write(resultsDirectory: layout.root)
        let byRank = try String(contentsOfFile: "\(layout.root)/metric-by-rank.svg", encoding: .utf8)
        #expect(byRank.contains("Final eval accuracy against rank"))
        #expect(byRank.contains("stroke-dasharray"))
        #expect(!byRank.contains("nan") && !byRank.contains("inf"))

        let experiment = try (manifest.task as! GLUETaskSettings).makeTask() as! GLUEExperiment
        for (run, record) in zip(manifest.runs, summary.records) {
            let adapterDirectory = layout.peftAdapterDirectory(run.id)
            let config = try PeftConfig(contentsOf: "\(adapterDirectory)/\(PeftCheckpoint.configFile)")
            #expect(config.modulesToSave == ["classifier"])
            #expect(config.baseModelNameOrPath == "sentence-transformers/all-MiniLM-L6-v2")
            #expect(try PeftCheckpoint.load(adapterDirectory).baseModelSHA256 == files.weightsSHA256)
            #expect(!FileManager.default.fileExists(atPath: layout.adapterFile(run.id)))
            // The step-1 checkpoint is in peft's layout too, with the state to resume from.
            let checkpoint = layout.checkpointDirectory(run.id, step: 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoint).sorted()
                    == [PeftCheckpoint.configFile, PeftCheckpoint.weightsFile, "training_state.safetensors"])
            _ = try Self.reloaded(checkpoint, experiment: experiment)

            // The reloaded model scores the dev subset exactly as the run's last evaluation did.
            let encoder = try Self.reloaded(adapterDirectory, experiment: experiment)
            #expect(encoder.adapters.count == (run.variant.spec.hasAdapters ? 12 : 0))
            let model = GLUEClassifier(experiment: experiment, classifier: BertTextClassifier(encoder: encoder, family: MiniLM()),
                                       batcher: experiment.trainBatcher)
            let metrics = try model.evaluate()
            // The CSV holds the loss to float precision.
            #expect(metrics["loss"].map(Float.init) == Float(record.fields[column("final_eval_loss")]), "\(run.id)")
            #expect(metrics["accuracy"] == Double(record.fields[column("final_eval_accuracy")]), "\(run.id)")
        }
    }

    /// Every variant's peft config reproduces its adapters: random factors and head, a few
    /// allocation steps (AdaLoRA masks, svd-prune re-factors), saved and attached to a fresh
    /// encoder, give the same logits (to float rounding of svd-prune's per-module α).
    @Test(arguments: [("loraplus", ""), ("dora", ""), ("vera", ""), ("lorafa", ""), ("lora", "  init: olora"), ("dora", "  init: pissa"),
                      ("{name: adalora, mode: peft, tinit: 0, tfinal: 1, deltaT: 1}", ""),
                      ("{name: adalora, mode: svd-prune, interval: 1, start_step: 1, energy_threshold: 0.8}", "  use_rslora: true"),
                      ("{name: adalora, mode: svd-prune, interval: 1, start_step: 1, energy_threshold: 0.8}", "")])
    func everyVariantSavesAConfigThatReproducesItsLogits(_ variant: String, _ extraSweep: String) throws {
        _ = try minilmFilesOrSkip()
        let manifest = try Self.manifest(variants: "[\(variant)]", extraSweep: extraSweep)
        let run = manifest.runs[0]
        let experiment = try (manifest.task as! GLUETaskSettings).makeTask() as! GLUEExperiment
        let plan = run.variant.plan
        let builder = try #require(try plan.layerBuilder(for: run.moduleShapes))
        let model = try experiment.makeModel(seed: 1, batchSize: 4, base: .float32) { module, base in
            guard run.modules.contains(module.name) else { return nil }
            return try builder.adapter(for: module, base: base, seed: 7)
        } as! GLUEClassifier
        var rng = SplitMix64(seed: 3)
        for parameter in model.trainableParameters {
            parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.05, using: &rng)
        }
        let method = try plan.makeMethod(layers: model.adapters)
        let optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: model.trainableParameters, learningRate: 0, weightDecay: 0)])
        for step in 0..<2 {
            _ = try model.trainOnNextBatch()  // AdaLoRA's importance scores need gradients
            try method.afterOptimizerStep(step, optimizer: optimizer)
        }
        if let allocator = method as? AdaLoRAAllocator {
            #expect(allocator.rankPattern.values.contains { $0.contains(false) }, "the saved rank pattern should drop triplets")
        }
        if run.variant.label.hasPrefix("adalora-svd") {
            #expect(method.ranks.values.contains { $0 < run.variant.adapterRank }, "svd-prune should have pruned a module")
        }
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SavedAdapter(plan: plan, model: model, method: method).save(directory: directory, file: "", metadata: [:])

        let encoder = try Self.reloaded(directory, experiment: experiment)
        let batch = experiment.evalBatches[0]
        func logits(_ encoder: BertEncoder) throws -> [Float] {
            try encoder.logits(inputIDs: batch.inputIds, attentionMask: batch.attentionMask, batchSize: batch.batchSize).storage
        }
        let (restored, original) = (try logits(encoder), try logits((model.classifier as! BertTextClassifier).encoder))
        #expect(zip(restored, original).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(restored) vs \(original)")
        // Saved as trained, bit for bit, unless the layout changed the arithmetic (rank patterns, a residual's rank-2r form).
        if !plan.changesRank, run.initialization.map({ $0 == .kaiming }) ?? true { #expect(restored == original) }
    }

    @Test func anUnknownTaskKeyNamesTheAllowedOnes() {
        #expect {
            try Self.manifest(extraTask: ", max_len: 64")
        } throws: { error in
            "\(error)".contains("task.max_len: found an unknown key 'max_len'; allowed: name, data_dir, max_train_examples, max_length, "
                + "length_bucketing, eval_examples, validation_examples, prompt, label_words (did you mean 'max_length'?)")
        }
    }

    @Test func headOnlyNeedsATaskWithAHead() {
        #expect {
            try Manifest(yaml: ExperimentSupport.manifest(sweep: "  variants: [head_only]\n  ranks: [4]"), file: "m.yaml")
        } throws: { error in
            "\(error)".contains("found head_only; allowed: a variant with adapters: task synthetic on synthetic has no trainable head")
        }
    }

    @Test func aMissingModelNamesTheCommandThatFetchesIt() throws {
        let empty = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        var settings = try Self.manifest().task as! GLUETaskSettings
        settings.store = ModelStore(cacheDirectory: ModelStore.defaultCacheDirectory(environment: ["LORABENCH_CACHE": empty]))
        #expect {
            try settings.makeTask()
        } throws: { error in
            "\(error)" == "model all-MiniLM-L6-v2 is not in \(empty); fetch it with: lorabench fetch-model minilm"
        }
    }
}
