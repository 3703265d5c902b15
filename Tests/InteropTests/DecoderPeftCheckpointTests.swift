import Foundation
@testable import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
@testable import LoRABenchModels
@testable import LoRABenchInterop
import LoRABenchTestSupport
import Testing

/// peft adapters on the Llama decoder: peft's own SmolLM2 checkpoints (the `peft-checkpoint` cases of
/// the smollm2 fixtures, discovered by case.json `kind` under `SMOLLM2_FIXTURES_DIR`, else
/// Tests/Fixtures/smollm2) give transformers' logits, adapted and merged; a decoder's adapters saved
/// in peft's causal-LM layout load back to the same logits; a folder that does not fit is refused
/// naming its file.
@Suite struct DecoderPeftCheckpointTests {
    static let checkpointCases = SmolLM2.cases(kind: "peft-checkpoint")


    @Test func checkpointCasesArePresent() {
        #expect(!Self.checkpointCases.isEmpty, "no peft-checkpoint case in \(SmolLM2.fixturesDirectory.path)")
    }

    @Test(arguments: checkpointCases)
    func peftCheckpointGivesTransformersLogits(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let rtol = try #require(settings["rtol"] as? Double, "\(folder.path)/case.json: no rtol")
        let expected = try SafetensorsFile(path: folder.appendingPathComponent("expected.safetensors").path)
        let checkpoint = try PeftCheckpoint.load(folder.path)
        #expect(ModelFamilyRegistry.family(forBaseModel: checkpoint.config.baseModelNameOrPath) is any LlamaFamily)
        let adapted = try AdaptedDecoder(checkpoint: checkpoint, weights: SmolLM2.weightsOrSkip(),
                                         baseModelSHA256: LoRABenchInterop.SmolLM2().weightsSHA256)
        #expect(adapted.adapters.map(\.name).sorted() == checkpoint.modules)

        let inputIDs = try expected.ints("input_ids"), attentionMask = try expected.ints("attention_mask")
        let batchSize = try expected.info("input_ids").shape[0]
        let lastRows = LlamaDecoder.lastTokenRows(attentionMask: attentionMask, batchSize: batchSize)
        func logitsLast() throws -> [Float] {
            try adapted.decoder.forward(inputIDs: inputIDs, attentionMask: attentionMask, batchSize: batchSize)
            return adapted.decoder.logits(at: lastRows).storage
        }
        let adaptedError = relativeError(try logitsLast(), try expected.floats("logits_last"))
        adapted.merge()
        #expect(adapted.isMerged)
        let mergedError = relativeError(try logitsLast(), try expected.floats("merged_logits_last"))
        adapted.unmerge()
        let unmergedError = relativeError(try logitsLast(), try expected.floats("logits_last"))
        print("\(folder.lastPathComponent): logits_last \(adaptedError), merged_logits_last \(mergedError), after unmerge \(unmergedError) (rtol \(rtol))")
        #expect(adaptedError <= rtol, "logits_last")
        #expect(mergedError <= rtol, "merged_logits_last")
        #expect(unmergedError <= rtol, "logits_last after unmerge")
    }

    // MARK: Saving

    static var config: LlamaConfig { TinyLlama.config }

    /// The tiny random Llama: the round trip needs no file.
    static let randomWeights = TinyLlama.randomWeights(seed: 21)

    /// LoRA (r 4, α 8) on `q_proj` and `down_proj` of layer 1 only, every factor random (B non-zero),
    /// saved for SmolLM2 into a fresh folder, the base held in `baseFormat`.
    static func savedDecoder(baseFormat: BaseWeightFormat = .float32) throws -> (decoder: LlamaDecoder, directory: String) {
        let run = RunShape(rank: 4, alpha: 8, steps: 1, seed: 5, targetModules: ["q_proj", "down_proj"])
        let plan = try VariantRegistry.plan(named: "lora", for: run)
        let chosen = ["model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj"]
        let builder = try #require(try plan.layerBuilder(for: config.modules.filter { chosen.contains($0.name) }))
        var rng = SplitMix64(seed: 8)
        let decoder = try LlamaDecoder(weights: randomWeights, baseFormat: baseFormat) { module, base in
            guard chosen.contains(module.name) else { return nil }
            let adapter = try builder.adapter(for: module, base: base, seed: 3)
            for parameter in adapter.parameters { parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.2, using: &rng) }
            return adapter
        }
        let layers = decoder.adapters.map { NamedAdapter(name: $0.name, adapter: $0.adapter) }
        let directory = NSTemporaryDirectory() + "lorabench-decoder-checkpoint-\(UUID().uuidString)"
        try AdaptedDecoder.save(decoder, plan: plan, method: plan.makeMethod(layers: layers), family: .smollm2,
                                  baseFormat: baseFormat, to: directory)
        return (decoder, directory)
    }

    static let batch = (inputIDs: [1, 5, 9, 30, 2, 2, 7, 3, 11, 4, 8, 6], attentionMask: [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1], batchSize: 2)

    static func logits(_ decoder: LlamaDecoder) throws -> Matrix {
        try decoder.forward(inputIDs: batch.inputIDs, attentionMask: batch.attentionMask, batchSize: batch.batchSize)
        return decoder.logits(at: Array(0..<batch.inputIDs.count))
    }

    @Test(arguments: [BaseWeightFormat.float32, .qlora])
    func savedAdaptersLoadBackWithIdenticalLogits(_ baseFormat: BaseWeightFormat) throws {
        let (original, directory) = try Self.savedDecoder(baseFormat: baseFormat)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let want = try Self.logits(original)
        let checkpoint = try PeftCheckpoint.load(directory)
        #expect(checkpoint.config.baseModelNameOrPath == "HuggingFaceTB/SmolLM2-135M-Instruct")
        #expect(checkpoint.config["task_type"] == .string("CAUSAL_LM"))
        #expect(checkpoint.config["auto_mapping"] == .null)
        #expect(checkpoint.config["layers_to_transform"] == .array([.int(1)]))
        #expect(checkpoint.file.names.allSatisfy { $0.hasPrefix("base_model.model.model.layers.1.") }, "\(checkpoint.file.names)")
        #expect(checkpoint.baseModelSHA256 == LoRABenchInterop.SmolLM2().weightsSHA256)

        let loaded = try AdaptedDecoder(checkpoint: checkpoint, weights: Self.randomWeights, baseModelSHA256: nil)
        #expect(loaded.adapters.map(\.name) == original.adapters.map(\.name))
        #expect(loaded.baseFormat == baseFormat && loaded.trainedBaseFormat == baseFormat)
        let got = try Self.logits(loaded.decoder)
        #expect(got.storage == want.storage)
        let adapterEffect = relativeError(want, try Self.logits(LlamaDecoder(weights: Self.randomWeights, baseFormat: baseFormat)))
        #expect(adapterEffect > 1e-2, "the random adapter must move the logits")
        loaded.merge()
        #expect(relativeError(try Self.logits(loaded.decoder), want) < 1e-5)
        loaded.unmerge()
        #expect(relativeError(try Self.logits(loaded.decoder), want) < 1e-5)
    }

    /// A `target_modules` string is peft's regular expression over whole module names: selecting
    /// exactly the adapted modules, it loads with no `layers_to_transform`.
    @Test func aRegularExpressionTargetLoads() throws {
        let (original, directory) = try Self.savedDecoder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.altered(directory) { _, config in
            config["target_modules"] = .string(#"model\.layers\.1\.(self_attn\.q_proj|mlp\.down_proj)"#)
            config["layers_to_transform"] = .null
        }
        let loaded = try AdaptedDecoder(checkpoint: PeftCheckpoint.load(directory), weights: Self.randomWeights, baseModelSHA256: nil)
        #expect(try Self.logits(loaded.decoder).storage == Self.logits(original).storage)
    }

    /// The saved folder with `change` applied to its tensors and config.
    static func altered(_ directory: String, _ change: (inout [String: TensorToWrite], inout PeftConfig) -> Void) throws {
        let loaded = try PeftCheckpoint.load(directory)
        var tensors = try Dictionary(uniqueKeysWithValues: loaded.file.names.map { name in
            (name, TensorToWrite(floats: try loaded.file.floats(name), shape: try loaded.file.info(name).shape))
        })
        var config = loaded.config
        change(&tensors, &config)
        try PeftCheckpoint.save(PeftAdapter(config: config, tensors: tensors), to: directory)
    }

    static func loadError(_ directory: String) throws -> String {
        do {
            _ = try AdaptedDecoder(checkpoint: PeftCheckpoint.load(directory), weights: randomWeights, baseModelSHA256: nil)
        } catch {
            return "\(error)"
        }
        Issue.record("\(directory) must be refused")
        return ""
    }

    @Test func aFolderThatDoesNotFitIsRefusedNamingTheFile() throws {
        let (_, directory) = try Self.savedDecoder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let weightsPath = "\(directory)/adapter_model.safetensors", configPath = "\(directory)/adapter_config.json"
        let query = "base_model.model.model.layers.1.self_attn.q_proj."

        try Self.altered(directory) { tensors, _ in tensors["base_model.model.model.norm.weight"] = TensorToWrite(floats: [Float](repeating: 1, count: 16), shape: [16]) }
        #expect(try Self.loadError(directory) == "\(weightsPath): tensors that match no adapted module: base_model.model.model.norm.weight")

        try Self.altered(directory) { tensors, _ in
            tensors["base_model.model.model.norm.weight"] = nil
            tensors[query + "lora_A.weight"] = TensorToWrite(floats: [Float](repeating: 0.1, count: 4 * 15), shape: [4, 15])
        }
        #expect(try Self.loadError(directory) == "\(weightsPath): tensor '\(query)lora_A.weight' has shape [4, 15] but this base model needs [4, 16]; the adapter was trained on HuggingFaceTB/SmolLM2-135M-Instruct")

        try Self.altered(directory) { tensors, config in
            tensors[query + "lora_A.weight"] = TensorToWrite(floats: [Float](repeating: 0.1, count: 4 * 16), shape: [4, 16])
            config["layers_to_transform"] = .array([.int(0)])
        }
        #expect(try Self.loadError(directory) == "\(configPath): invalid adapter_config.json key 'layers_to_transform': target_modules [\"q_proj\", \"down_proj\"] and layers_to_transform [0] do not select model.layers.1.mlp.down_proj, which has adapter tensors in \(weightsPath); peft would not adapt it")

        try Self.altered(directory) { _, config in config["layers_to_transform"] = .null }
        #expect(try Self.loadError(directory) == "\(configPath): invalid adapter_config.json key 'target_modules': target_modules [\"q_proj\", \"down_proj\"] select model.layers.0.self_attn.q_proj, which has no adapter tensors in \(weightsPath); peft would leave it at its initialisation, LoRABench refuses")
    }

    @Test func aFolderForAnotherModelIsNotOpenedAsADecoder() throws {
        let (_, directory) = try Self.savedDecoder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.altered(directory) { _, config in config.baseModelNameOrPath = "sentence-transformers/all-MiniLM-L6-v2" }
        do {
            _ = try AdaptedDecoder.open(directory)
            Issue.record("an encoder's adapter must not open as a decoder's")
        } catch {
            #expect("\(error)" == "\(directory)/adapter_config.json: base_model_name_or_path is sentence-transformers/all-MiniLM-L6-v2, which LoRABench cannot load; known models: smollm2 (HuggingFaceTB/SmolLM2-135M-Instruct) (pass --model when the adapter was trained on one of them)")
        }
    }
}
