import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// A module's place in the encoder: `encoder.layer.3.attention.self.query` is layer 3, kind
/// `query`; the kinds are peft's target names (query, key, value, attention.output,
/// intermediate, output).
public struct ModulePosition: Equatable, Sendable {
    public static let kinds = ["query", "key", "value", "attention.output", "intermediate", "output"]

    public var layer: Int
    public var kind: String

    public init(layer: Int, kind: String) {
        self.layer = layer
        self.kind = kind
    }

    public init?(_ module: String) {
        let parts = module.split(separator: ".").map(String.init)
        guard let index = parts.firstIndex(of: "layer"), index + 1 < parts.count, let layer = Int(parts[index + 1]) else { return nil }
        var kind = parts[(index + 2)...].joined(separator: ".")
        if kind.hasPrefix("attention.self.") { kind.removeFirst("attention.self.".count) }
        if kind.hasSuffix(".dense") { kind.removeLast(".dense".count) }
        self.layer = layer
        self.kind = kind
    }
}

/// The per-module analyses of trained adapters on their base model: subspace similarity and
/// ΔW statistics (LoRA paper, section 7), magnitude and direction changes (DoRA paper, section
/// 2.2 / 3.2) and AdaLoRA's final rank allocation. Each returns rows ready for a CSV.
public enum AdapterAnalyses {
    /// φ(i, j) of one module's two adapters, on the A factors (the paper's measure: input
    /// directions) and on the B factors (output directions, the left singular vectors; the paper
    /// notes the same analysis applies). B starts at zero, so its overlap is learned; A starts
    /// random, and two adapters drawn from the same seed share their initial A rows.
    public struct SubspaceComparison {
        public var module: String
        public var factorA: Matrix
        public var factorB: Matrix
    }

    /// Every module the two adapters share, in the first one's order.
    public static func subspaceSimilarity(_ first: AdaptedModel, _ second: AdaptedModel) throws -> [SubspaceComparison] {
        let others = Dictionary(uniqueKeysWithValues: second.adapters.map { ($0.name, $0.adapter) })
        return try first.adapters.compactMap { named -> SubspaceComparison? in
            guard let other = others[named.name] else { return nil }
            let (a1, b1) = try factors(named), (a2, b2) = try factors(NamedAdapter(name: named.name, adapter: other))
            guard a1.rows > 0, a2.rows > 0 else { return nil }
            return SubspaceComparison(module: named.name, factorA: try LoRABenchAnalysis.subspaceSimilarity(a1, a2),
                                      factorB: try LoRABenchAnalysis.subspaceSimilarity(b1.transposed, b2.transposed))
        }
    }

    /// `layer,kind,measure,i,j,phi` rows (measure `A` or `B`).
    public static func subspaceCSV(_ comparisons: [SubspaceComparison]) -> String {
        var text = CSV.line(["layer", "kind", "measure", "i", "j", "phi"])
        for comparison in comparisons {
            let position = ModulePosition(comparison.module)
            for (measure, phi) in [("A", comparison.factorA), ("B", comparison.factorB)] {
                for i in 0..<phi.rows {
                    for j in 0..<phi.cols {
                        text += CSV.line([position.map { String($0.layer) } ?? "", position?.kind ?? comparison.module, measure,
                                          String(i + 1), String(j + 1), String(format: "%.4f", phi[i, j])])
                    }
                }
            }
        }
        return text
    }

    /// The down- [r, in] and up-projection [out, r] of an adapter whose update has them (LoRA's A
    /// and B, AdaLoRA's Q and P, VeRA's scaled slices); any other adapter is an error, not a skip.
    package static func factors(_ named: NamedAdapter) throws -> (a: Matrix, b: Matrix) {
        guard let update = named.adapter as? any LowRankUpdate else {
            throw AnalysisError.noFactors(module: named.name, adapter: "\(type(of: named.adapter))")
        }
        return (update.downProjection, update.upProjection)
    }

    /// ΔW's statistics for every adapter of `model`, with r its rank.
    public static func deltaWeightStatistics(_ model: AdaptedModel) throws -> [(module: String, rank: Int, statistics: DeltaWeightStatistics)] {
        try model.adapters.map { named in
            let adapter = named.adapter
            let rank = max(1, adapter.rank)
            return (named.name, adapter.rank, try DeltaWeightStatistics.compute(delta: adapter.deltaWeight(), base: adapter.base.weight, rank: rank))
        }
    }

    /// ΔM and ΔD (against W0) of every adapted module's merged weight W0 + ΔW.
    public static func magnitudeDirection(_ model: AdaptedModel) throws -> [(module: String, change: MagnitudeDirectionChange)] {
        try model.adapters.map { named in
            var merged = named.adapter.deltaWeight()
            axpy(1, named.adapter.base.weight, &merged)
            return (named.name, try MagnitudeDirectionChange.between(merged, base: named.adapter.base.weight))
        }
    }

    /// Every module's final rank and the rank it started with (AdaLoRA: the kept triplets and
    /// init_r; svd-prune: its pruned rank), in model order.
    public static func ranks(_ model: AdaptedModel) -> [(module: String, rank: Int, initialRank: Int)] {
        model.adapters.map { ($0.name, $0.adapter.rank, $0.adapter.initialRank) }
    }
}
