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

/// `infer` on a decoder: prompts rendered (plain or as a chat turn), continued greedily to an end
/// token, and the same tokens whether an adapter is merged into its base or not. On the tiny random
/// Llama with a one-character tokenizer, and on SmolLM2 against transformers' greedy tokens.
@Suite struct TextGenerationTests {
    /// Three control tokens, newline and space in byte-level spelling, a–z and ".": 32 ids, the tiny
    /// Llama's vocabulary; no merges, so each character is a token. `<|endoftext|>` is the eos.
    static let tinyTokenizer: ByteLevelBPE = {
        let tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "Ċ", "Ġ"] + (UInt8(ascii: "a")...UInt8(ascii: "z")).map { String(UnicodeScalar($0)) } + ["."]
        return try! ByteLevelBPE(tokens: tokens, merges: [], tokenTypes: [3, 3, 3] + [Int](repeating: 1, count: tokens.count - 3),
                                 specialTokens: .init(eos: 0), source: "tiny tokenizer")
    }()

    /// Plain ChatML, without a default system turn.
    static let plainChatML = try! ChatMLTemplate(
        template: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        source: "plain ChatML")

    static let tinyPrompts = ["the cat sat", "a", "once upon a time."]

    @Test func aChatPromptIsOneUserTurnFollowedByTheAssistantsTurn() throws {
        let generator = TextGenerator(decoder: try LlamaDecoder(weights: TinyLlama.randomWeights(seed: 2)), tokenizer: Self.tinyTokenizer,
                                      chatTemplate: Self.plainChatML, endTokenIDs: [0, 2])
        #expect(generator.promptTokenIDs("hi") == Self.tinyTokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"))
        #expect(generator.promptTokenIDs("hi").prefix(2) == [1, 25])
        let plain = TextGenerator(decoder: generator.decoder, tokenizer: Self.tinyTokenizer, chatTemplate: nil, endTokenIDs: [0])
        #expect(plain.promptTokenIDs("hi") == [12, 13])
    }

    @Test func aContinuationEndsAtAnEndTokenWhichItsTextLeavesOut() throws {
        let decoder = try LlamaDecoder(weights: TinyLlama.randomWeights(seed: 2))
        let free = try TextGenerator(decoder: decoder, tokenizer: Self.tinyTokenizer, chatTemplate: nil, endTokenIDs: [])
            .generate(Self.tinyPrompts, maxNewTokens: 10)
        #expect(free.allSatisfy { $0.tokenIDs.count == 10 && !$0.endedWithEndToken })
        let end = free[0].tokenIDs[2]
        let generator = TextGenerator(decoder: decoder, tokenizer: Self.tinyTokenizer, chatTemplate: nil, endTokenIDs: [end])
        let ended = try generator.generate(Self.tinyPrompts, maxNewTokens: 10)
        for (full, generation) in zip(free, ended) {
            let kept = full.tokenIDs.firstIndex(of: end).map { Array(full.tokenIDs[...$0]) } ?? full.tokenIDs
            #expect(generation.tokenIDs == kept)
            #expect(generation.endedWithEndToken == (kept.last == end))
            #expect(generation.text == (try Self.tinyTokenizer.decode(generation.endedWithEndToken ? Array(kept.dropLast()) : kept)))
        }
        #expect(generator.tally.prompts == 3 && generator.tally.seconds > 0)
        #expect(generator.tally.promptTokens == Self.tinyPrompts.map { Self.tinyTokenizer.encode($0).count }.reduce(0, +))
        #expect(generator.tally.generatedTokens == ended.map(\.tokenIDs.count).reduce(0, +))
        #expect(generator.tally.summary.hasPrefix("generated \(generator.tally.generatedTokens) tokens for 3 prompts (\(generator.tally.promptTokens) prompt tokens) in "))
        #expect(throws: LlamaError.invalidInput("prompt 2 of the batch is empty: there is no token to continue")) {
            try generator.generate(["a", ""], maxNewTokens: 1)
        }
    }

    /// Every variant on all fourteen Linears, its factors random: merged into the base it generates
    /// the tokens it generates unmerged, and again once unmerged.
    @Test(arguments: adapterVariantNames)
    func mergedAndUnmergedAdaptersGenerateTheSameTokens(_ variant: String) throws {
        var rng = SplitMix64(seed: 31)
        let weights = TinyLlama.randomWeights(seed: 6)
        let decoder = try LlamaDecoder(weights: weights) { _, base in
            let adapter = try makeLayer(variant, base: base, config: AdapterConfig(rank: 4), seed: 9)
            for parameter in adapter.parameters { parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.5, using: &rng) }
            return adapter
        }
        let generator = TextGenerator(decoder: decoder, tokenizer: Self.tinyTokenizer, chatTemplate: nil, endTokenIDs: [])
        let unmerged = try generator.generate(Self.tinyPrompts, maxNewTokens: 12).map(\.tokenIDs)
        let base = try TextGenerator(decoder: LlamaDecoder(weights: weights), tokenizer: Self.tinyTokenizer, chatTemplate: nil, endTokenIDs: [])
            .generate(Self.tinyPrompts, maxNewTokens: 12).map(\.tokenIDs)
        #expect(unmerged != base, "the random adapters must change what is generated")
        for (_, adapter) in decoder.adapters { adapter.merge() }
        #expect(try generator.generate(Self.tinyPrompts, maxNewTokens: 12).map(\.tokenIDs) == unmerged, "\(variant) merged")
        for (_, adapter) in decoder.adapters { adapter.unmerge() }
        #expect(try generator.generate(Self.tinyPrompts, maxNewTokens: 12).map(\.tokenIDs) == unmerged, "\(variant) unmerged again")
    }

    // MARK: SmolLM2


    static let forwardCases = SmolLM2.cases(kind: "forward")

    /// case.json's greedy prompts through the file's tokenizer and chat template give transformers'
    /// tokens; a chat answer ends at `<|im_end|>`, the file's eos.
    @Test(arguments: forwardCases)
    func smolLM2ContinuesThePromptsAsTransformersDoes(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let greedy = try #require(settings["greedy"] as? [[String: Any]], "\(folder.path)/case.json: no greedy list")
        let file = try SmolLM2.ggufOrSkip()
        let decoder = try LlamaDecoder(weights: SmolLM2.weightsOrSkip())
        for entry in greedy {
            let expected = entry["new_ids"] as! [Int], text = entry["text"] as! String
            if let messages = entry["messages"] as? [[String: String]] {
                let generator = try TextGenerator(decoder: decoder, gguf: file, chat: true)
                #expect(generator.endTokenIDs == [2])
                let generation = try #require(try generator.generate([messages[0]["content"]!], maxNewTokens: expected.count).first)
                #expect(generation.promptTokenCount == (entry["prompt_ids"] as! [Int]).count)
                #expect(generation.tokenIDs == Array(expected.prefix(through: expected.firstIndex(of: 2)!)))
                #expect(generation.endedWithEndToken)
                #expect(generation.text == String(text.prefix { $0 != "<" }), "\(generation.text)")
            } else {
                let generator = try TextGenerator(decoder: decoder, gguf: file, chat: false)
                let generation = try #require(try generator.generate([entry["prompt"] as! String], maxNewTokens: expected.count).first)
                #expect(generation.tokenIDs == expected && !generation.endedWithEndToken)
                #expect(generation.text == text)
            }
        }
    }

    /// peft's own SmolLM2 adapters generate the same tokens merged and unmerged.
    @Test(arguments: DecoderPeftCheckpointTests.checkpointCases)
    func smolLM2MergedAndUnmergedPeftAdaptersGenerateTheSameTokens(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let prompts = try #require(settings["prompts"] as? [String], "\(folder.path)/case.json: no prompts")
        let adapted = try AdaptedDecoder(checkpoint: PeftCheckpoint.load(folder.path), weights: SmolLM2.weightsOrSkip(),
                                         baseModelSHA256: LoRABenchInterop.SmolLM2().weightsSHA256)
        let generator = try TextGenerator(decoder: adapted.decoder, gguf: SmolLM2.ggufOrSkip(), chat: false)
        let unmerged = try generator.generate(prompts, maxNewTokens: 12).map(\.tokenIDs)
        adapted.merge()
        let merged = try generator.generate(prompts, maxNewTokens: 12).map(\.tokenIDs)
        print("\(folder.lastPathComponent): \(try unmerged.map { try generator.tokenizer.decode($0) })")
        #expect(merged == unmerged)
    }
}
