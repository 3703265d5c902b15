import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchTraining
@testable import LoRABenchResults
@testable import LoRABenchData
@testable import LoRABenchVariants
@testable import LoRABenchModels
@testable import LoRABenchInterop
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// The GLUE tasks on a decoder (`model: smollm2`): a language-model classifier that reads the
/// task's prompt and scores one word per label at its last token, trained, evaluated, saved in
/// peft's causal-LM layout and loaded back with the same scores; and the errors a prompt, its
/// words or `head_only` give.
@Suite struct DecoderGLUETaskTests {
    /// 8 training sentences of at most 16 tokens, batches of 4, 4 dev sentences, 2 steps: a debug build runs
    /// the 30-layer decoder slowly.
    static func manifest(variants: String = "[lora]", extraTask: String = "", task: String = "sst2", extraSweep: String = "",
                         targets: String = "[q_proj, v_proj]", maxLength: Int = 16) throws -> Manifest {
        try Manifest(yaml: """
        experiment: tiny-decoder-\(task)
        task: {name: \(task), data_dir: '\(GLUETaskTests.dataDirectory)', max_train_examples: 8, eval_examples: 4, max_length: \(maxLength)\(extraTask)}
        model: smollm2
        training: {learning_rate: 1e-3, steps: 2, batch_size: 4, eval_interval: 2, log_interval: 1}
        sweep:
          variants: \(variants)
          ranks: [4]
          target_modules: \(targets)
        \(extraSweep)
        """, file: "m.yaml")
    }

    /// Every variant, and the NF4 base, on the decoder's seven Linears of its last layer (`layers`,
    /// peft's `layers_to_transform`): random factors, two steps of allocation (AdaLoRA masks,
    /// svd-prune re-factors), saved in peft's causal-LM layout and attached to a fresh decoder,
    /// give the same label scores (to float rounding where the layout changes the arithmetic).
    @Test(arguments: [("lora", ""), ("loraplus", ""), ("dora", ""), ("vera", ""), ("lorafa", ""), ("lora", "  init: olora"),
                      ("dora", "  init: pissa"), ("lora", "  base: nf4"),
                      ("{name: adalora, mode: peft, tinit: 0, tfinal: 1, deltaT: 1}", ""),
                      ("{name: adalora, mode: svd-prune, interval: 1, start_step: 1, energy_threshold: 0.8}", "")])
    func everyVariantOnTheDecoderSavesAConfigThatReproducesItsScores(_ variant: String, _ extraSweep: String) throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let manifest = try Self.manifest(variants: "[\(variant)]", extraSweep: "  layers: [29]\n" + extraSweep, targets: "all")
        let run = manifest.runs[0]
        #expect(run.modules.count == 7 && run.modules.allSatisfy { $0.hasPrefix("model.layers.29.") })
        let experiment = try manifest.task.makeTask() as! GLUEExperiment
        let plan = run.variant.plan
        let builder = try #require(try plan.layerBuilder(for: run.moduleShapes))
        let model = try experiment.makeModel(seed: 1, batchSize: 4, base: run.base) { module, base in
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
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SavedAdapter(plan: plan, model: model, method: method).save(directory: directory, file: "", metadata: [:])
        let checkpoint = try PeftCheckpoint.load(directory)
        #expect(checkpoint.config["layers_to_transform"] == .array([.int(29)]))
        #expect(checkpoint.config["task_type"] == .string("CAUSAL_LM"))

        let base = experiment.base as! LlamaClassifierBase
        let adapted = try AdaptedDecoder(checkpoint: checkpoint, weights: base.weights, baseModelSHA256: base.files.weightsSHA256,
                                         baseFormat: run.base)
        let reloaded = LlamaTextClassifier(decoder: adapted.decoder, labelTokenIDs: base.labelTokenIDs, family: base.files.family)
        let batch = experiment.evalBatches[0]
        let (restored, original) = (try reloaded.evaluate(batch).labelScores.storage, try model.classifier.evaluate(batch).labelScores.storage)
        #expect(zip(restored, original).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "\(restored) vs \(original)")
        if !plan.changesRank, run.initialization.map({ $0 == .kaiming }) ?? true { #expect(restored == original) }
    }

    /// `base: gguf` keeps every Linear in the file's Q4_1 blocks and dequantizes it for each
    /// product: the blocks read back bit for bit as the float32 weights. With B = 0 a training
    /// step is the float32 base's to the bit; with trained factors the scores agree to float
    /// rounding, since a float32 base fuses W0 + s·B·A into one product and a packed one (as NF4)
    /// adds the update's product to the base's.
    @Test func aGGUFBaseComputesWhatTheDequantizedBaseComputes() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let manifest = try Self.manifest(extraSweep: "  base: [fp32, gguf]")
        #expect(manifest.runs.map(\.base) == [.float32, .stored])
        #expect(manifest.runs[1].id.contains("-gguf-"))
        let experiment = try manifest.task.makeTask() as! GLUEExperiment
        let base = experiment.base as! LlamaClassifierBase
        let blocks = try LlamaClassifierBase.sharedWeights(base.file, config: base.config, for: .stored)
        let float32 = try base.weights
        for layer in [0, 29] {
            for (stored, dequantized) in zip(blocks.layers[layer].linears, float32.layers[layer].linears) {
                guard case let .packed(packed) = stored else {
                    Issue.record("layer \(layer): a Linear of a gguf base is not in its blocks")
                    continue
                }
                #expect(packed.dequantized() == dequantized.dequantized())
            }
        }
        let models = try manifest.runs.map { run in
            let builder = try #require(try run.variant.plan.layerBuilder(for: run.moduleShapes))
            return try experiment.makeModel(seed: 1, batchSize: 4, base: run.base) { module, base in
                guard run.modules.contains(module.name) else { return nil }
                return try builder.adapter(for: module, base: base, seed: 7)
            } as! GLUEClassifier
        }
        let firstSteps = try models.map { model in [try model.trainOnNextBatch()] + model.trainableParameters.flatMap(\.grad.storage) }
        #expect(firstSteps[0] == firstSteps[1])
        let scores = try models.map { model in
            var rng = SplitMix64(seed: 3)
            for parameter in model.trainableParameters {
                parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.05, using: &rng)
            }
            return try model.classifier.evaluate(experiment.evalBatches[0]).labelScores.storage
        }
        #expect(zip(scores[0], scores[1]).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) }, "\(scores[0]) vs \(scores[1])")
    }

    @Test func layersSelectPeftsLayersToTransformAndNameTheRange() throws {
        let manifest = try Self.manifest(extraSweep: "  layers: [0, 29]")
        #expect(manifest.runs[0].modules == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                             "model.layers.29.self_attn.q_proj", "model.layers.29.self_attn.v_proj"])
        #expect(manifest.runs[0].id != (try Self.manifest()).runs[0].id)
        #expect {
            try Self.manifest(extraSweep: "  layers: [30]")
        } throws: { "\($0)".contains("sweep.layers[0]: found '30'; allowed: a layer index from 0 to 29, or a list of them") }
        #expect {
            try Self.manifest(extraSweep: "  layers: [1, 1]")
        } throws: { "\($0)".contains("found layer 1 a second time") }
        #expect {
            try Manifest(yaml: ExperimentSupport.manifest(sweep: "  variants: [lora]\n  ranks: [4]\n  layers: [0]"), file: "m.yaml")
        } throws: { "\($0)".contains("sweep.layers: found layers; allowed: no layers key: this task's modules (fc1, fc2) are not in numbered layers") }
        #expect {
            try Self.manifest(targets: "[q_prj]")
        } throws: {
            "\($0)".contains("found 'q_prj'; allowed: self_attn.q_proj, self_attn.k_proj, self_attn.v_proj, self_attn.o_proj, mlp.gate_proj, "
                + "mlp.up_proj, mlp.down_proj, or a module's full name such as model.layers.0.self_attn.q_proj")
        }
    }

    @Test func aTinySST2SweepOnTheDecoderSavesACausalLMAdapterThatScoresAsTheRunDid() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let manifest = try Self.manifest()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.map(\.status) == [.completed], "\(outcomes.map(\.reason))")
        let layout = ResultsLayout(root: "\(directory)/results")
        let run = manifest.runs[0]

        // peft's layout for a causal LM: the hub name, CAUSAL_LM, no head to save; q and v of all 30 layers.
        let adapterDirectory = layout.peftAdapterDirectory(run.id)
        let checkpoint = try PeftCheckpoint.load(adapterDirectory)
        #expect(checkpoint.config.baseModelNameOrPath == "HuggingFaceTB/SmolLM2-135M-Instruct")
        #expect(checkpoint.config["task_type"] == .string("CAUSAL_LM"))
        #expect(checkpoint.config.modulesToSave == nil)
        #expect(checkpoint.modules.count == 60)

        // The summary counts the decoder's 134.5M frozen parameters and the adapters alone as trainable.
        let summary = try CSVTable(contentsOf: layout.summaryFile, producer: "test")
        let trainable = Int(summary.records[0].fields[try summary.column("trainable_parameters")])
        #expect(trainable == 30 * (4 * (576 + 576) + 4 * (576 + 192)))

        // The adapter loads onto a fresh decoder and scores the dev subset exactly as the run's last evaluation did.
        let experiment = try manifest.task.makeTask() as! GLUEExperiment
        let base = experiment.base as! LlamaClassifierBase
        let adapted = try AdaptedDecoder(checkpoint: checkpoint, weights: base.weights, baseModelSHA256: base.files.weightsSHA256)
        let model = GLUEClassifier(experiment: experiment, classifier: LlamaTextClassifier(decoder: adapted.decoder, labelTokenIDs: base.labelTokenIDs,
                                                                                           family: base.files.family),
                                   batcher: experiment.trainBatcher)
        let evaluation = try model.evaluate(.eval)
        #expect(evaluation.metrics["accuracy"] == outcomes[0].finalEval["accuracy"])
        #expect(evaluation.metrics["loss"].map(Float.init) == outcomes[0].finalEval["loss"].map(Float.init))
        #expect(try PredictionsCSV.read(layout.predictionsFile(run.id)).map(\.predicted) == evaluation.predictions?.map(\.predicted))
    }

    /// The training loss is the causal-LM loss of the label's word after the prompt: the same
    /// number `LlamaDecoder.loss(labels:)` gives with the word appended and every other label −100.
    @Test func theTrainingLossIsTheLanguageModelLossOfTheLabelWord() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let experiment = try Self.manifest().task.makeTask() as! GLUEExperiment
        let base = experiment.base as! LlamaClassifierBase
        let classifier = try base.makeClassifier(seed: 1, base: .float32) { _, _ in nil }
        let batch = experiment.evalBatches[0]
        let loss = try classifier.loss(batch, training: false)
        #expect(try classifier.evaluate(batch).loss == loss)

        let decoder = try LlamaDecoder(weights: base.weights)
        var total = 0.0
        for row in 0..<batch.batchSize {
            let positions = row * batch.seqLen..<(row + 1) * batch.seqLen
            let prompt = positions.filter { batch.attentionMask[$0] == 1 }.map { batch.inputIds[$0] }
            let ids = prompt + [base.labelTokenIDs[batch.labels[row]]]
            let labels = Array(repeating: LlamaDecoder.ignoredLabel, count: prompt.count) + [ids.last!]
            total += Double(try decoder.loss(inputIDs: ids, attentionMask: Array(repeating: 1, count: ids.count), labels: labels,
                                             batchSize: 1, training: false))
        }
        let expected = total / Double(batch.batchSize)
        #expect(abs(Double(loss) - expected) <= 1e-5 * expected, "\(loss) vs \(expected)")
    }

    @Test func theDefaultPromptsRenderTheirExamplesAndTheirWordsAreSingleTokens() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        for (task, definition) in [("sst2", SST2.self), ("rte", RTE.self), ("cola", CoLA.self), ("mrpc", MRPC.self)] as [(String, any GLUETaskDefinition.Type)] {
            let experiment = try Self.manifest(task: task, maxLength: 64).task.makeTask() as! GLUEExperiment
            let base = experiment.base as! LlamaClassifierBase
            #expect(base.labelTokenIDs.count == 2 && Set(base.labelTokenIDs).count == 2, "\(task)")
            let example = GLUEExample(text: "A", textPair: ["rte", "mrpc"].contains(task) ? "B" : nil, label: 0)
            let rendered = definition.prompt.render(example)
            #expect(try base.tokenizer.decode(base.encode(example).inputIds) == rendered)
            #expect(!rendered.contains("{sentence"), "\(task): \(rendered)")
        }
    }

    @Test func aLabelWordOfSeveralTokensNamesItsTokens() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let manifest = try Self.manifest(extraTask: ", label_words: [' dreadfully', ' wonderfully']")
        #expect {
            try manifest.task.makeTask()
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("label word ' dreadfully' is ") && text.contains("tokens for smollm2") && text.contains("leading space")
        }
    }

    @Test func promptAndWordErrorsNameTheKeyAndWhatIsAllowed() {
        #expect {
            try Self.manifest(extraTask: ", prompt: 'Review: {text}'")
        } throws: { "\($0)".contains("task.prompt: found the template lacks {sentence}; allowed: a template holding {sentence}") }
        #expect {
            try Self.manifest(extraTask: ", prompt: '{sentence1} / {sentence2}'", task: "sst2")
        } throws: { "\($0)".contains("task.prompt: found the template lacks {sentence}") }
        #expect {
            try Self.manifest(extraTask: ", prompt: '{sentence1} and {sentence}'", task: "rte")
        } throws: { "\($0)".contains("task.prompt: found the template lacks {sentence2}") }
        #expect {
            try Self.manifest(extraTask: ", label_words: [' yes']")
        } throws: { "\($0)".contains("task.label_words: found 1 label word(s) for 2 labels; allowed: a list of 2 distinct words") }
        #expect {
            try Self.manifest(extraTask: ", label_words: [' yes', ' yes']")
        } throws: { "\($0)".contains("task.label_words: found a label word is repeated") }
    }

    @Test func headOnlyIsRefusedOnADecoderWhoseHeadIsFrozen() {
        #expect {
            try Self.manifest(variants: "[head_only, lora]")
        } throws: { "\($0)".contains("found head_only; allowed: a variant with adapters: task sst2 on smollm2 has no trainable head") }
    }

    /// The prompt and words are part of a decoder run's settings (and so of its id); an encoder's are not.
    @Test func thePromptIsInADecoderRunsSettingsOnly() throws {
        let decoder = try Self.manifest(), other = try Self.manifest(extraTask: ", label_words: [' bad', ' good']")
        #expect(decoder.runs[0].id != other.runs[0].id)
        let encoder = try GLUETaskTests.manifest(variants: "[lora]")
        let encoderOther = try GLUETaskTests.manifest(variants: "[lora]", extraTask: ", label_words: [' bad', ' good']")
        #expect(encoder.runs[0].id == encoderOther.runs[0].id)
    }
}
