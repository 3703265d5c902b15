import Foundation
import LoRABenchTensorIO
@testable import LoRABenchModels
@testable import LoRABenchInterop
import LoRABenchTestSupport
import Testing

/// `infer` and `merge` on the decoder, run as a user would: generation from the base model and
/// from peft's SmolLM2 adapter (merged or not), its merged folder giving peft's merged logits, and
/// the options that do not apply to a model refused before it loads.
@Suite struct DecoderCommandTests {
    static let adapterCase = SmolLM2.fixturesDirectory.appendingPathComponent("peft-lora").path

    @Test func inferContinuesAPromptWithTheBaseModelAsTransformersDoes() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let plain = try AdapterCommandSafetyTests.output(["infer", "--model", "smollm2", "--text", "The capital of France is", "--max-new-tokens", "2"])
        #expect(plain.status == 0, "\(plain.errors)")
        #expect(plain.output == " Paris.\n")
        #expect(plain.errors.hasPrefix("generated 2 tokens for 1 prompt (5 prompt tokens) in ") && plain.errors.hasSuffix(" tokens/s\n"), "\(plain.errors)")

        // The answer ends at <|im_end|>, which is generated (counted) but not printed.
        let chat = try AdapterCommandSafetyTests.output(["infer", "--model", "smollm2", "--chat", "--prompt", "What is the capital of Germany?"])
        #expect(chat.status == 0, "\(chat.errors)")
        #expect(chat.output == "The capital of Germany is Berlin.\n")
        #expect(chat.errors.hasPrefix("generated 8 tokens for 1 prompt (37 prompt tokens) in "), "\(chat.errors)")
    }

    /// The case's prompts from a file: a row per prompt, the same merged and unmerged.
    @Test func inferWithAnAdapterPrintsARowPerPromptMergedOrNot() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let prompts = try #require(try Fixtures.json(URL(fileURLWithPath: "\(Self.adapterCase)/case.json"))["prompts"] as? [String])
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let texts = "\(directory)/prompts.txt"
        try prompts.joined(separator: "\n").write(toFile: texts, atomically: true, encoding: .utf8)
        let arguments = ["infer", Self.adapterCase, "--texts-file", texts, "--max-new-tokens", "6", "--batch-size", "2"]
        let unmerged = try AdapterCommandSafetyTests.output(arguments)
        #expect(unmerged.status == 0, "\(unmerged.errors)")
        let rows = unmerged.output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        #expect(rows.map { $0.count } == [2, 2, 2], "\(unmerged.output)")
        #expect(rows.map { String($0.last!) } == prompts)
        #expect(unmerged.errors.hasPrefix("generated 18 tokens for 3 prompts ("), "\(unmerged.errors)")

        let merged = try AdapterCommandSafetyTests.output(arguments + ["--merged"])
        #expect(merged.status == 0, "\(merged.errors)")
        #expect(merged.output == unmerged.output)
    }

    /// The merged folder holds transformers' names in float32; read back as a decoder, it gives the
    /// logits peft's `merge_and_unload` gave.
    @Test func mergeWritesAFolderThatGivesPeftsMergedLogits() throws {
        let file = try SmolLM2.ggufOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let out = "\(directory)/merged"
        let result = try AdapterCommandSafetyTests.output(["merge", Self.adapterCase, "--out", out])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains("merged 60 adapted modules of \(Self.adapterCase) into SmolLM2-135M-Instruct"), "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["config.json", "model.safetensors"])

        let config = try LlamaConfig(gguf: file)
        let weights = try SafetensorsFile(path: "\(out)/model.safetensors")
        #expect(weights.names.count == 2 + 9 * config.layerCount && weights.tensors["lm_head.weight"] == nil)
        let decoder = try LlamaDecoder(weights: llamaWeights(huggingFace: weights, config: config))
        let expected = try SafetensorsFile(path: "\(Self.adapterCase)/expected.safetensors")
        let inputIDs = try expected.ints("input_ids"), attentionMask = try expected.ints("attention_mask")
        let batchSize = try expected.info("input_ids").shape[0]
        try decoder.forward(inputIDs: inputIDs, attentionMask: attentionMask, batchSize: batchSize)
        let logits = decoder.logits(at: LlamaDecoder.lastTokenRows(attentionMask: attentionMask, batchSize: batchSize))
        let error = relativeError(logits.storage, try expected.floats("merged_logits_last"))
        print("peft-lora merged folder: merged_logits_last \(error)")
        #expect(error <= 1e-4)
        let json = try Fixtures.json(URL(fileURLWithPath: "\(out)/config.json"))
        #expect(json["bos_token_id"] as? Int == 1 && json["eos_token_id"] as? Int == 2 && json["num_hidden_layers"] as? Int == 30)

        let again = try AdapterCommandSafetyTests.output(["merge", Self.adapterCase, "--out", out])
        #expect(again.status != 0 && again.errors.contains("\(out) already holds files; choose an empty or new --out folder"))
    }

    /// `bench generate --no-reference`: our child's row alone, its exact token count after the chat
    /// prompt's 46 tokens.
    @Test func benchGenerateWithoutTheReferencePrintsOurRowAlone() throws {
        _ = try SmolLM2.ggufPathOrSkip()
        let result = try AdapterCommandSafetyTests.output(["bench", "generate", "--model", "smollm2", "--no-reference", "--rounds", "1", "--repeats", "1",
                                                           "--warmup", "0", "--max-new-tokens", "2", "--threads", "1"])
        #expect(result.status == 0, "\(result.errors)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(result.output)")
        #expect(lines.first?.hasPrefix("SmolLM2-135M-Instruct greedy generation: 2 new tokens after a 46-token prompt (chat template)") == true, "\(result.output)")
        #expect(lines.dropFirst().first?.hasPrefix("adapter    implementation") == true)
        #expect(lines.last?.hasPrefix("base       LoRABench                          46    2  ") == true, "\(result.output)")
    }

    /// Each refused before any model loads (none of these needs the cache).
    @Test func optionsThatDoNotApplyToTheModelAreRefusedNamingThem() throws {
        let encoderAdapter = peftCheckpointFixture("lora-qv").path
        let cases: [(arguments: [String], message: String)] = [
            (["infer", "--text", "hello"], "give an adapter folder, or --model naming a decoder to run without one (smollm2)"),
            (["infer", "--model", "minilm", "--text", "hello"],
             "minilm is not a decoder, so it cannot generate text; models that can: smollm2 (HuggingFaceTB/SmolLM2-135M-Instruct)"),
            (["infer", "--model", "smollm2", "--merged", "--text", "hello"], "--merged folds an adapter into the base: give the adapter folder"),
            (["infer", "--model", "smollm2", "--text", "hello", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
            (["infer", Self.adapterCase, "--text", "hello", "--out", "/tmp/never-written.safetensors"],
             "--out: for an encoder's outputs; a decoder's generations are printed"),
            (["infer", encoderAdapter, "--text", "hello", "--chat"],
             "--chat: for a decoder's generation; \(encoderAdapter) is an encoder's adapter, which predicts labels"),
            (["bench", "generate", "--model", "minilm"], "--model minilm is not allowed; allowed: a decoder: smollm2 (HuggingFaceTB/SmolLM2-135M-Instruct)"),
            (["bench", "generate", "--max-new-tokens", "0"], "--max-new-tokens 0 is not allowed; allowed: an integer ≥ 1"),
        ]
        for (arguments, message) in cases {
            let result = try LorabenchProcess.failure(arguments)
            #expect(result.status != 0 && result.errors.contains(message), "\(arguments): \(result.errors)")
        }
    }
}
