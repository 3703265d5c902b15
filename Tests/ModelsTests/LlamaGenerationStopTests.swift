@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Greedy generation's stop tokens on the tiny random Llama: a continuation ends with its first
/// stop token, and a sequence that has ended changes nothing for the others of its batch.
@Suite struct LlamaGenerationStopTests {
    static let prompts = [[3, 9, 4], [17, 2, 30, 5, 11], [8]]

    @Test func eachContinuationEndsAtItsFirstStopTokenAndTheOthersRunOn() throws {
        let decoder = try LlamaDecoder(weights: TinyLlama.randomWeights(seed: 4))
        let free = try decoder.generateGreedy(prompts: Self.prompts, maxNewTokens: 16)
        // A token the first continuation produces early: the others may produce it later or never.
        let stop = try #require(free[0].dropFirst(2).first)
        let stopped = try decoder.generateGreedy(prompts: Self.prompts, maxNewTokens: 16, stopTokens: [stop])
        for (full, ended) in zip(free, stopped) {
            let expected = full.firstIndex(of: stop).map { Array(full[...$0]) } ?? full
            #expect(ended == expected, "continuation \(full) with stop token \(stop)")
        }
        #expect(stopped[0].count <= 3)
    }

    @Test func aContinuationWhoseFirstTokenStopsItIsThatTokenAlone() throws {
        let decoder = try LlamaDecoder(weights: TinyLlama.randomWeights(seed: 4))
        let free = try decoder.generateGreedy(prompts: Self.prompts, maxNewTokens: 4)
        // Every first token stops its own continuation at once.
        let stopped = try decoder.generateGreedy(prompts: Self.prompts, maxNewTokens: 4, stopTokens: Set(free.map { $0[0] }))
        #expect(stopped == free.map { [$0[0]] })
    }
}
