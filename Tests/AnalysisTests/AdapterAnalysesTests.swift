import Foundation
@testable import LoRABenchVariants
@testable import LoRABenchInterop
@testable import LoRABenchAnalysis
import LoRABenchTestSupport
import Testing

/// The per-module analyses on real adapters: peft's own checkpoints for all-MiniLM-L6-v2.
@Suite struct AdapterAnalysesTests {
    static func fixture(_ name: String) throws -> AdaptedModel {
        try adaptedFixture(name)
    }

    @Test func modulePositionsNameLayerAndKind() {
        #expect(ModulePosition("encoder.layer.3.attention.self.query") == ModulePosition(layer: 3, kind: "query"))
        #expect(ModulePosition("encoder.layer.0.attention.output.dense") == ModulePosition(layer: 0, kind: "attention.output"))
        #expect(ModulePosition("encoder.layer.5.intermediate.dense") == ModulePosition(layer: 5, kind: "intermediate"))
        #expect(ModulePosition("encoder.layer.5.output.dense") == ModulePosition(layer: 5, kind: "output"))
        #expect(ModulePosition("classifier") == nil)
    }

    @Test func anAdapterAgainstItselfOverlapsCompletely() throws {
        let model = try Self.fixture("lora-qv")
        let comparisons = try AdapterAnalyses.subspaceSimilarity(model, model)
        #expect(comparisons.map(\.module) == model.adapters.map(\.name))
        for comparison in comparisons {
            for phi in [comparison.factorA, comparison.factorB] {
                #expect(phi.shape == [8, 8])
                for i in 0..<8 { #expect(abs(phi[i, i] - 1) < 1e-4, "\(comparison.module): φ(\(i + 1), \(i + 1)) = \(phi[i, i])") }
            }
        }
        let csv = AdapterAnalyses.subspaceCSV(comparisons).split(separator: "\n")
        #expect(csv.first == "layer,kind,measure,i,j,phi")
        #expect(csv.count == 1 + comparisons.count * 2 * 64)
    }

    @Test func deltaWeightStatisticsFollowEachAdaptersRank() throws {
        for name in ["lora-qv", "dora-attn", "adalora-ffn"] {
            let model = try Self.fixture(name)
            let rows = try AdapterAnalyses.deltaWeightStatistics(model)
            #expect(rows.count == model.adapters.count)
            for ((module, rank, statistics), named) in zip(rows, model.adapters) {
                #expect(module == named.name && rank == named.adapter.rank)
                #expect(statistics.relativeNorm > 0 && statistics.relativeNorm.isFinite, "\(name) \(module)")
                // A LoRA update has at most r nonzero singular values; DoRA's rescaling of W0 adds more.
                if name == "lora-qv" { #expect(statistics.stableRank <= Double(rank) + 1e-6) }
            }
        }
    }

    @Test func magnitudeAndDirectionChangesAreMeasuredOnTheMergedWeight() throws {
        let model = try Self.fixture("dora-attn")
        let changes = try AdapterAnalyses.magnitudeDirection(model)
        #expect(changes.count == model.adapters.count)
        for ((module, change), named) in zip(changes, model.adapters) {
            let base = named.adapter.base.weight
            named.adapter.merge()
            let merged = named.adapter.base.weight
            named.adapter.unmerge()
            let expected = try MagnitudeDirectionChange.between(merged, base: base)
            #expect(abs(change.magnitude - expected.magnitude) <= 1e-6 * max(1, expected.magnitude), "\(module)")
            #expect(abs(change.direction - expected.direction) <= 1e-6, "\(module)")
            #expect(change.magnitude > 0 && change.direction > 0)
        }
    }

    @Test func ranksCountAdaLoRAsKeptTripletsAgainstInitR() throws {
        let model = try Self.fixture("adalora-ffn")
        let config = model.checkpoint.config
        let pattern = try #require(try config.object("rank_pattern"))
        let initialRank = try #require(try config.int("init_r"))
        let ranks = AdapterAnalyses.ranks(model)
        #expect(ranks.map(\.module).sorted() == model.checkpoint.modules)
        for (module, rank, initial) in ranks {
            guard case let .array(kept)? = pattern["\(module).lora_E"] else { Issue.record("\(module) has no pattern"); continue }
            #expect(rank == kept.filter { $0 == .bool(true) }.count, "\(module)")
            #expect(initial == initialRank)
        }
        #expect(AdapterAnalyses.ranks(try Self.fixture("lora-qv")).allSatisfy { $0.rank == 8 && $0.initialRank == 8 })
    }
}
