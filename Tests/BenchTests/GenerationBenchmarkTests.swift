import Foundation
import Testing
@testable import LoRABenchBench
@testable import LoRABenchModels
import LoRABenchInterop
import LoRABenchTestSupport

/// The generation bench's own parts, on a tiny random decoder and made-up measurements (no timing
/// is checked: the numbers depend on the machine; PyTorch's side needs Python, so it is not run).
@Suite struct GenerationBenchmarkTests {
    static let weights = TinyLlama.randomWeights(seed: 3)

    @Test func ourSideGeneratesExactlyTheNewTokensAskedForAndTimesEachCall() throws {
        let benchmark = try GenerationBenchmark(maxNewTokens: 6, warmup: 0, repeats: 2, threads: 1)
        let measurement = try benchmark.run(weights: Self.weights, promptIDs: [3, 1, 4])
        #expect(measurement.promptTokens == 3 && measurement.seconds.count == 2)
        // No end token: a decoder told to stop at the first token it generates runs on all the same.
        let free = try LlamaDecoder(weights: Self.weights).generateGreedy(prompts: [[3, 1, 4]], maxNewTokens: 6)[0]
        let stopped = try LlamaDecoder(weights: Self.weights).generateGreedy(prompts: [[3, 1, 4]], maxNewTokens: 6, stopTokens: [free[0]])[0]
        #expect(stopped.count == 1)
        #expect(measurement.tokenIDs == free)
    }

    @Test func aLoRAAdapterAsInitialisedGeneratesTheBasesTokens() throws {
        let base = try GenerationBenchmark(maxNewTokens: 5, warmup: 0, repeats: 1, threads: 1)
        let adapted = try GenerationBenchmark(maxNewTokens: 5, warmup: 0, repeats: 1, loraRank: 2, threads: 1)
        #expect(adapted.settings.map(\.adapterLabel) == ["base", "lora r=2"])
        #expect(base.settings.map(\.adapterLabel) == ["base"])
        #expect(try adapted.run(weights: Self.weights, promptIDs: [7, 2]).tokenIDs == base.run(weights: Self.weights, promptIDs: [7, 2]).tokenIDs)
    }

    @Test func aSettingOutOfRangeIsAnErrorNamingItsOption() throws {
        #expect { try GenerationBenchmark(maxNewTokens: 0) } throws: { "\($0)" == "--max-new-tokens 0 is not allowed; allowed: an integer ≥ 1" }
        #expect { try GenerationBenchmark(warmup: -1) } throws: { "\($0)" == "--warmup -1 is not allowed; allowed: an integer ≥ 0" }
        #expect { try GenerationBenchmark(loraRank: 0) } throws: { "\($0)".hasPrefix("--lora-rank 0 is not allowed") }
        #expect { try GenerationBenchmark(threads: 0) } throws: { "\($0)".hasPrefix("--threads 0 is not allowed") }
        #expect { try GenerationComparison(children: [], rounds: 0) } throws: { "\($0)".hasPrefix("--rounds 0 is not allowed") }
        #expect { try GenerationBenchmark.decoder(named: "minilm") } throws: {
            "\($0)" == "--model minilm is not allowed; allowed: a decoder: smollm2 (HuggingFaceTB/SmolLM2-135M-Instruct)"
        }
        #expect(try GenerationBenchmark.decoder(named: "smollm2").name == "smollm2")
    }

    @Test func thePromptAndTheNewTokensMustFitTheContext() throws {
        // TinyLlama's context is 64 tokens.
        let benchmark = try GenerationBenchmark(maxNewTokens: 8)
        try benchmark.check(promptIDs: [Int](repeating: 1, count: 56), config: TinyLlama.config)
        #expect { try benchmark.check(promptIDs: [Int](repeating: 1, count: 60), config: TinyLlama.config) } throws: {
            "\($0)" == "--max-new-tokens 8 is not allowed; allowed: at most 4: the prompt's 60 tokens and the new ones must fit the model's context of 64"
        }
        #expect { try benchmark.check(promptIDs: [], config: TinyLlama.config) } throws: { "\($0)".hasPrefix("--prompt \"\" is not allowed") }
    }

    /// Ours and the Python script read the same options; the script's JSON decodes as ours does.
    @Test func bothChildrenTakeTheSameOptionsAndPrintTheSameJSON() throws {
        let benchmark = try GenerationBenchmark(maxNewTokens: 16, warmup: 1, repeats: 3, loraRank: 4, threads: 2)
        let arguments = benchmark.childArguments(promptIDs: [1, 9690, 198])
        #expect(arguments == ["--prompt-ids", "1,9690,198", "--max-new-tokens", "16", "--warmup", "1", "--repeats", "3", "--threads", "2",
                              "--lora-rank", "4"])
        #expect(try GenerationBenchmark.promptIDs(argument: "1,9690,198") == [1, 9690, 198])
        #expect { try GenerationBenchmark.promptIDs(argument: "1,,2") } throws: { "\($0)".hasPrefix("--prompt-ids 1,,2 is not allowed") }
        let scripts = try ["generate_reference.py", "reference_common.py"].map {
            try String(contentsOf: Fixtures.projectRoot.appendingPathComponent("Benchmarks/\($0)"), encoding: .utf8)
        }.joined()
        for option in arguments where option.hasPrefix("--") {
            #expect(scripts.contains("add_argument(\"\(option)\""), "Benchmarks/generate_reference.py does not take \(option)")
        }
        // A line generate_reference.py printed.
        let line = #"{"implementation": "PyTorch 2.15.0+cu132, transformers 5.25.0", "attention": "sdpa", "prompt_tokens": 3, "token_ids": [198, 1, 520], "seconds": [0.96], "peak_rss_mib": 1750.1, "threads": 1}"#
        let measurement = try JSONDecoder().decode(GenerationMeasurement.self, from: Data(line.utf8))
        #expect(measurement.promptTokens == 3 && measurement.tokenIDs == [198, 1, 520] && measurement.attention == "sdpa")
    }

    static func cell(_ label: String, adapter: String = "base", ids: [Int], medians: [Double], ratios: [Double], otherRounds: [Int] = []) -> GenerationComparison.Cell {
        let measurement = GenerationMeasurement(implementation: label, attention: nil, promptTokens: 37, tokenIDs: ids, seconds: [medians[0]],
                                                peakResidentMiB: 800)
        return GenerationComparison.Cell(label: label, adapter: adapter, firstRound: measurement, roundMedians: medians, ratios: ratios,
                                         peakResidentMiB: 812, roundsWithOtherTokens: otherRounds)
    }

    /// `--no-reference`: our rows alone, in the table a comparison prints, and nothing to agree with.
    @Test func ourRowsAloneFormTheSameTable() {
        let cells = [Self.cell("LoRABench", ids: Array(0..<64), medians: [1.0, 1.25, 1.5], ratios: [1, 1, 1]),
                     Self.cell("LoRABench", adapter: "lora r=8", ids: Array(0..<64), medians: [2, 2, 2], ratios: [1, 1, 1])]
        let lines = GenerationComparison.table(cells).split(separator: "\n").map(String.init)
        #expect(lines == [
            "adapter    implementation                 prompt  new  s/generation  IQR            tokens/s  time / ours (IQR)     peak MiB",
            "base       LoRABench                          37   64         1.250  1.125–1.375      51.2   1.00x (1.00–1.00)       812",
            "lora r=8   LoRABench                          37   64         2.000  2.000–2.000      32.0   1.00x (1.00–1.00)       812",
        ])
        #expect(GenerationComparison.agreement(cells, text: { "<\($0)>" }).isEmpty)
    }

    @Test func eachReferenceIsToldWhetherItGeneratedOurTokensOrWhereItFirstDiffers() {
        let cells = [
            Self.cell("LoRABench", ids: [5, 6, 7, 8], medians: [1], ratios: [1]),
            Self.cell("PyTorch (default: sdpa)", ids: [5, 6, 7, 8], medians: [2], ratios: [2]),
            Self.cell("PyTorch (eager)", ids: [5, 6, 9, 8], medians: [3], ratios: [3], otherRounds: [3]),
        ]
        #expect(GenerationComparison.agreement(cells, text: { "<\($0)>" }) == [
            "base, PyTorch (eager): other token ids in round(s) 3 than in round 1",
            "base: PyTorch (default: sdpa) generated the same 4 token ids as LoRABench",
            "base: PyTorch (eager) first differs from LoRABench at new token 3 of 4: LoRABench 7 <7>, PyTorch (eager) 9 <9>",
        ])
        let shorter = [cells[0], Self.cell("PyTorch (default: sdpa)", ids: [5, 6], medians: [2], ratios: [2])]
        #expect(GenerationComparison.agreement(shorter, text: { "<\($0)>" }) == [
            "base: PyTorch (default: sdpa) first differs from LoRABench at new token 3 of 4: LoRABench 7 <7>, PyTorch (default: sdpa) nothing (2 tokens)",
        ])
    }
}
