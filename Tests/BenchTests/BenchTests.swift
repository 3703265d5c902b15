import Testing
@testable import LoRABenchBench
@testable import LoRABenchModels
import LoRABenchInterop

/// The benches' bookkeeping (no timing is checked: the numbers depend on the machine).
@Suite struct BenchTests {
    @Test func theLayerBenchTimesTheFrozenLayerAndEveryVariantAskedFor() throws {
        let bench = LayerBenchmark(features: 16, batch: 8, rank: 2, warmup: 0, repeats: 1, variants: ["lora", "dora", "vera"])
        let rows = try bench.run()
        #expect(rows.map(\.name) == ["sgemm 8x16x16", "frozen linear (no adapter)", "lora r=2 forward+backward",
                                     "dora r=2 forward+backward", "vera r=2 forward+backward"])
        // Floor: 2·(2·N·d²) for the base, 6·(2·N·r·d) for the adapter's six GEMMs.
        #expect(bench.flops(adapted: false) == 4 * 8 * 256)
        #expect(bench.flops(adapted: true) == 4 * 8 * 256 + 12 * 8 * 2 * 16)
    }

    @Test func anUnknownVariantIsAnErrorNamingTheKnownOnes() {
        #expect { try LayerBenchmark(features: 8, batch: 2, rank: 2, warmup: 0, repeats: 1, variants: ["lorax"]).run() } throws: {
            "\($0)".contains("lorax") && "\($0)".contains("dora")
        }
    }

    @Test func theModelStepFLOPsCountEveryGEMM() {
        let config = BertConfig(vocabSize: 10, hiddenSize: 4, layerCount: 2, headCount: 2, intermediateSize: 8, maxPositions: 16,
                                typeVocabSize: 2, layerNormEpsilon: 1e-12)
        let base = ModelBenchmark.flops(config: config, batch: 2, sequence: 3, rank: 2, adapted: [])
        // Per layer: 2·(2·N·C·(4C + 2F)) for the linears' forward and ∂x, 12·N·T·C for attention.
        let linears: Double = 2 * 6 * 4 * (16 + 16), attention: Double = 12 * 6 * 3 * 4
        #expect(base == 2 * (2 * linears + attention))
        let adapter: Double = 4 * 6 * 2 * 12
        #expect(ModelBenchmark.flops(config: config, batch: 2, sequence: 3, rank: 2, adapted: [(4, 8)]) == base + adapter)
    }

    @Test func theAttentionBenchRunsAndCountsItsGEMMs() {
        let bench = AttentionBenchmark(batch: 2, sequence: 8, width: 8, heads: 2, warmup: 0, repeats: 2)
        #expect(bench.run().seconds.count == 2)
        // Forward QKᵀ and PV, backward ∂V, ∂P, ∂Q, ∂K: six products of 2·N·T·C each.
        #expect(bench.flops == 6 * 2 * 16 * 8 * 8)
    }

    @Test func quartilesInterpolateAsNumpyDoes() {
        let q = quartiles([4, 1, 3, 2])
        #expect(q.q1 == 1.75 && q.median == 2.5 && q.q3 == 3.25)
        #expect(quartiles([7]).median == 7)
    }

    @Test func theComparisonTableGivesTheRatioToOursPerRound() {
        let cells = [
            AlternatingComparison.Cell(label: "LoRABench", variant: "lora", roundMedians: [1, 2, 1], peakResidentMiB: 600, ratios: [1, 1, 1]),
            AlternatingComparison.Cell(label: "PyTorch+peft (default: sdpa)", variant: "lora", roundMedians: [1.5, 2.4, 1.3],
                                       peakResidentMiB: 900, ratios: [1.5, 1.2, 1.3]),
        ]
        let table = AlternatingComparison.table(cells, sgemmGFLOPS: [100, 120, 110], stepFLOPs: 55e9)
        #expect(table.contains("GEMM floor 0.500 s/step (55.0 GFLOP)"))
        #expect(table.contains(" 1.30x (1.25–1.40)"))
        // Ours per round: 0.55 / 1, 0.458 / 2, 0.5 / 1 of the floor; the median is 50 %.
        #expect(table.contains("        50%"))
        #expect(!table.contains("per round against"), "one variant: nothing to compare it with")
    }

    @Test func interleavedStepsGiveEachVariantAgainstTheFirstPerCycle() {
        // The second child ran on a machine twice as slow: its cycles' ratios are unchanged.
        let measurements = [
            InterleavedMeasurement(variants: ["lora", "dora"], seconds: [[1, 1, 1], [1.02, 1.04, 1.06]]),
            InterleavedMeasurement(variants: ["lora", "dora"], seconds: [[2, 2], [2.08, 2.1]]),
        ]
        let line = InterleavedMeasurement.ratioLine(measurements)
        #expect(line == "LoRABench with steps interleaved in one process (5 cycles over 2 children), per cycle against lora: dora 1.04x (1.04–1.05)")
        #expect(InterleavedMeasurement.ratioLine([InterleavedMeasurement(variants: ["lora"], seconds: [[1]])]) == nil)
        #expect(InterleavedMeasurement.ratioLine([]) == nil)
    }

    @Test func theTableGivesEachOfOurVariantsAgainstTheFirstInTheSameRound() {
        // Round 2 ran on a slower machine: its sgemm and its steps slowed together.
        let cells = [
            AlternatingComparison.Cell(label: "LoRABench", variant: "lora", roundMedians: [1, 1.6, 2], peakResidentMiB: 600, ratios: [1, 1, 1]),
            AlternatingComparison.Cell(label: "PyTorch+peft (default: sdpa)", variant: "lora", roundMedians: [3, 3, 3],
                                       peakResidentMiB: 900, ratios: [3, 1.5, 3]),
            AlternatingComparison.Cell(label: "LoRABench", variant: "dora", roundMedians: [1.1, 1.76, 2.4], peakResidentMiB: 700, ratios: [1, 1, 1]),
        ]
        let table = AlternatingComparison.table(cells, sgemmGFLOPS: [100, 50, 80], stepFLOPs: 55e9)
        #expect(table.contains("LoRABench per round against lora: dora 1.10x (1.10–1.15)"))
        // Each round's floor over that round's step: 0.55/1, 1.1/1.6, 0.6875/2, median 55 %; the
        // median floor over the median step would say 43 %.
        #expect(table.contains("        55%"))
    }

    @Test func theDecoderStepFLOPsCountTheHeadAndSkipTheFirstLayersInputGradient() {
        let config = LlamaConfig(vocabSize: 10, hiddenSize: 4, layerCount: 2, headCount: 2, keyValueHeadCount: 1, intermediateSize: 8,
                                 ropeTheta: 10_000, rmsNormEpsilon: 1e-5, contextLength: 16)
        // N = 6 tokens, T = 3, C = 4, KV = 2, F = 8; the loss over R = 4 positions.
        let base = ModelBenchmark.flops(config: config, batch: 2, sequence: 3, rank: 2, lossRows: 4, adapted: [])
        let linears: Double = 2 * 6 * 4 * (8 + 4 + 24), attention: Double = 12 * 6 * 3 * 4
        let firstInputGradient: Double = 2 * 6 * 4 * (4 + 4), head: Double = 4 * 4 * 4 * 10
        #expect(base == 2 * (2 * linears + attention) - firstInputGradient + head)
        #expect(ModelBenchmark.flops(config: config, batch: 2, sequence: 3, rank: 2, lossRows: 4, adapted: [(4, 8)]) == base + 4 * 6 * 2 * 12)
    }

    @Test func theModelIsTrainedAsItsFamilysArchitectureWithItsDefaults() throws {
        let encoder = ModelBenchmark(architecture: try BenchArchitecture(MiniLM()))
        #expect(encoder.batch == 32 && encoder.sequence == 64 && encoder.targetModules == BertEncoder.allLinearTargets)
        #expect(encoder.architecture.defaultVariants == ["lora", "dora", "adalora"])
        let decoder = ModelBenchmark(architecture: try BenchArchitecture(SmolLM2()))
        #expect(decoder.batch == 8 && decoder.sequence == 128 && decoder.lossPositions == .all)
        #expect(decoder.targetModules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        #expect(decoder.adaptedModules.count == 7 * 30 && decoder.architecture.defaultVariants == ["lora"])
        #expect(decoder.lossRows == 8 * 127)
        let last = ModelBenchmark(architecture: try BenchArchitecture(SmolLM2()), targetModules: ["q_proj", "v_proj"], lossPositions: .last)
        #expect(last.lossRows == 8 && last.adaptedModules.map(\.name).prefix(2) == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"])
    }
}
