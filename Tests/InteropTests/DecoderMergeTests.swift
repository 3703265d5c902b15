import Foundation
@testable import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchData
@testable import LoRABenchModels
@testable import LoRABenchInterop
import LoRABenchTestSupport
import Testing

/// `merge` on a decoder's adapter: the decoder's weights under transformers' `LlamaForCausalLM`
/// names with every adapter folded in, read back as a plain decoder, give the adapted model's
/// logits; the folder holds those weights in float32 and a config.json; an update that overflows
/// is refused with nothing written.
@Suite struct DecoderMergeTests {
    static var config: LlamaConfig { TinyLlama.config }

    /// transformers' state-dict names of the tiny Llama, in model order.
    static var huggingFaceNames: [String] {
        ["model.embed_tokens.weight"] + (0..<config.layerCount).flatMap { layer in
            ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
             "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"].map { "model.layers.\(layer).\($0).weight" }
        } + ["model.norm.weight"]
    }

    /// Every variant on layer 1's seven Linears and layer 0's q_proj, its factors random.
    @Test(arguments: adapterVariantNames)
    func theMergedTensorsReadBackGiveTheAdaptedLogits(_ variant: String) throws {
        var rng = SplitMix64(seed: 17)
        let weights = TinyLlama.randomWeights(seed: 13)
        let decoder = try LlamaDecoder(weights: weights) { module, base in
            guard module.name.hasPrefix("model.layers.1.") || module.name == "model.layers.0.self_attn.q_proj" else { return nil }
            let adapter = try makeLayer(variant, base: base, config: AdapterConfig(rank: 4), seed: 5)
            for parameter in adapter.parameters { parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.2, using: &rng) }
            return adapter
        }
        let want = try DecoderPeftCheckpointTests.logits(decoder)
        let tensors = decoder.huggingFaceTensors
        #expect(tensors.map(\.name) == Self.huggingFaceNames)
        #expect(tensors.compactMap(\.adaptedModule) == decoder.adapters.map(\.name))
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        for tensor in tensors { #expect(tensor.values().count == tensor.shape.reduce(1, *), "\(tensor.name)") }
        let reloaded = try LlamaDecoder(weights: llamaWeights(huggingFace: { byName[$0]!.values() }, config: Self.config, path: "merged tensors"))
        let error = relativeError(try DecoderPeftCheckpointTests.logits(reloaded), want)
        #expect(error < 1e-5, "\(variant): merged logits differ by \(error)")
        #expect(relativeError(want, try DecoderPeftCheckpointTests.logits(LlamaDecoder(weights: weights))) > 1e-2, "the adapters must move the logits")
        #expect(try DecoderPeftCheckpointTests.logits(decoder).storage == want.storage, "the decoder itself stays unmerged")
    }

    /// A saved LoRA adapter on a float32 or an NF4 base: the folder's model.safetensors, read back
    /// as a float32 decoder, gives the adapted model's logits (an NF4 base's W0 as it was
    /// dequantized), and its config.json describes the architecture with the tied head.
    @Test(arguments: [BaseWeightFormat.float32, .qlora])
    func mergeWritesAFolderThatReadsBackToTheAdaptedLogits(_ baseFormat: BaseWeightFormat) throws {
        let (_, saved) = try DecoderPeftCheckpointTests.savedDecoder(baseFormat: baseFormat)
        let out = try ExperimentSupport.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: saved)
            try? FileManager.default.removeItem(atPath: out)
        }
        let adapted = try AdaptedDecoder(checkpoint: PeftCheckpoint.load(saved), weights: DecoderPeftCheckpointTests.randomWeights, baseModelSHA256: nil)
        let want = try DecoderPeftCheckpointTests.logits(adapted.decoder)
        let count = try adapted.writeMergedModel(to: out, specialTokens: .init(bos: 1, eos: 2, unknown: 0, padding: 2))
        #expect(count == Self.huggingFaceNames.count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["config.json", "model.safetensors"])
        #expect(!adapted.isMerged)

        let file = try SafetensorsFile(path: "\(out)/model.safetensors")
        #expect(file.names.sorted() == Self.huggingFaceNames.sorted())
        #expect(file.tensors.values.allSatisfy { $0.dtype == "F32" })
        #expect(try file.info("model.layers.0.self_attn.k_proj.weight").shape == [Self.config.keyValueWidth, Self.config.hiddenSize])
        #expect(try file.info("model.norm.weight").shape == [Self.config.hiddenSize])
        let reloaded = try LlamaDecoder(weights: llamaWeights(huggingFace: file, config: Self.config))
        let error = relativeError(try DecoderPeftCheckpointTests.logits(reloaded), want)
        #expect(error < 1e-5, "\(baseFormat): the merged folder's logits differ by \(error)")

        let json = try Fixtures.json(URL(fileURLWithPath: "\(out)/config.json"))
        #expect(json["architectures"] as? [String] == ["LlamaForCausalLM"])
        #expect(json["model_type"] as? String == "llama")
        let integers: [String: Int] = ["hidden_size": 16, "intermediate_size": 24, "num_attention_heads": 4, "num_key_value_heads": 2,
                                       "head_dim": 4, "num_hidden_layers": 2, "vocab_size": 32, "max_position_embeddings": 64,
                                       "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2]
        for (key, value) in integers { #expect(json[key] as? Int == value, "config.json \(key)") }
        #expect(json["tie_word_embeddings"] as? Bool == true)
        #expect(json["torch_dtype"] as? String == "float32" && json["dtype"] as? String == "float32")
        #expect(json["rms_norm_eps"] as? Double == Double(Self.config.rmsNormEpsilon))
        #expect(json["rope_theta"] as? Double == 10_000)
        #expect((json["rope_parameters"] as? [String: Any])?["rope_theta"] as? Double == 10_000)
        #expect(json["hidden_act"] as? String == "silu")
    }

    @Test func aMergedWeightThatOverflowsIsRefusedAndNothingIsWritten() throws {
        let (_, saved) = try DecoderPeftCheckpointTests.savedDecoder()
        let out = try ExperimentSupport.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: saved)
            try? FileManager.default.removeItem(atPath: out)
        }
        let query = "base_model.model.model.layers.1.self_attn.q_proj."
        try DecoderPeftCheckpointTests.altered(saved) { tensors, _ in
            // Finite factors whose product is not: 1e30 · 1e30 overflows float32.
            tensors[query + "lora_A.weight"] = TensorToWrite(floats: [Float](repeating: 1e30, count: 4 * 16), shape: [4, 16])
            tensors[query + "lora_B.weight"] = TensorToWrite(floats: [Float](repeating: 1e30, count: 16 * 4), shape: [16, 4])
        }
        let adapted = try AdaptedDecoder(checkpoint: PeftCheckpoint.load(saved), weights: DecoderPeftCheckpointTests.randomWeights, baseModelSHA256: nil)
        do {
            try adapted.writeMergedModel(to: out, specialTokens: .init())
            Issue.record("an overflowing merged weight must be refused")
        } catch {
            #expect("\(error)" == "\(saved)/adapter_model.safetensors: merging the adapter of model.layers.1.self_attn.q_proj gives NaN or infinite values in model.layers.1.self_attn.q_proj.weight (its update overflows float32: check lora_alpha and the tensors); pass --allow-non-finite to write it anyway for inspection")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out) == [])
    }
}
