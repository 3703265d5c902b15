import Foundation

/// A module's place in the encoder: `encoder.layer.3.attention.self.query` is layer 3, kind
/// `query`; the kinds are peft's target names (query, key, value, attention.output,
/// intermediate, output).
public struct ModulePosition: Equatable, Sendable {
    public static let kinds = ["query", "key", "value", "attention.output", "intermediate", "output"]

    public var layer: Int
    public var kind: String

    public init?(_ module: String) {
        let parts = module.split(separator: ".").map(String.init)
        guard let index = parts.firstIndex(of: "layer"), index + 1 < parts.count, let layer = Int(parts[index + 1]) else { return nil }
        var rest = parts[(index + 2)...].filter { $0 != "self" }
        if rest.last == "dense" { rest.removeLast() }
        self.layer = layer
        self.kind = rest.joined(separator: ".")
    }
}

/// The per-module analyses of trained adapters on their base model: subspace similarity and
/// ΔW statistics (LoRA paper, section 7), magnitude and direction changes (DoRA paper, section
/// 2.2 / 3.2) and AdaLoRA's final rank allocation. Each returns rows ready for a CSV.
public enum AdapterAnalyses {
    /// φ(i, j) of one module's two adapters, on the A factors (the paper's measure) and on the
    /// top right singular vectors of ΔW (the input directions the update actually uses).
    public struct SubspaceComparison {
        public var module: String
        public var factorA: Matrix
        public var deltaWeight: Matrix
    }

    /// Every module the two adapters share, in the first one's order.
    public static func subspaceSimilarity(_ first: AdaptedModel, _ second: AdaptedModel) throws -> [SubspaceComparison] {
        let others = Dictionary(uniqueKeysWithValues: second.adapters.map { ($0.name, $0.adapter) })
        return try first.adapters.compactMap { named -> SubspaceComparison? in
            guard let other = others[named.name], let a1 = factorA(named.adapter), let a2 = factorA(other),
                  a1.rows > 0, a2.rows > 0 else { return nil }
            return SubspaceComparison(module: named.name, factorA: try LoRABench.subspaceSimilarity(a1, a2),
                                      deltaWeight: try LoRABench.subspaceSimilarity(try topInputDirections(named.adapter),
                                                                                    try topInputDirections(other)))
        }
    }

    /// `module,layer,kind,measure,i,j,phi` rows (measure `A` or `delta_w`).
    public static func subspaceCSV(_ comparisons: [SubspaceComparison]) -> String {
        var text = CSV.line(["module", "layer", "kind", "measure", "i", "j", "phi"])
        for comparison in comparisons {
            let position = ModulePosition(comparison.module)
            for (measure, phi) in [("A", comparison.factorA), ("delta_w", comparison.deltaWeight)] {
                for i in 0..<phi.rows {
                    for j in 0..<phi.cols {
                        text += CSV.line([comparison.module, position.map { String($0.layer) } ?? "", position?.kind ?? "", measure,
                                          String(i + 1), String(j + 1), String(format: "%.6f", phi[i, j])])
                    }
                }
            }
        }
        return text
    }

    /// LoRA's and DoRA's `lora_A` [r, in], or AdaLoRA's kept P rows; nil for anything else.
    static func factorA(_ adapter: any Adapter) -> Matrix? {
        switch adapter {
        case let factored as any LowRankFactored: return factored.a.value
        case let layer as AdaLoRALayer: return layer.a.value
        default: return nil
        }
    }

    /// The top-r right singular vectors of ΔW as rows [r, in], r the adapter's rank (capped by ΔW's nonzero spectrum).
    static func topInputDirections(_ adapter: any Adapter) throws -> Matrix {
        let decomposition = try svd(adapter.deltaWeight())
        let nonzero = decomposition.singularValues.filter { $0 > 0 }.count
        return decomposition.vt.rowSlice(0..<max(1, min(adapter.rank, nonzero)))
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

    /// AdaLoRA's kept triplets per module (`rank_pattern`; init_r where the pattern has no entry), or
    /// nil for a checkpoint that is not AdaLoRA.
    public static func adaloraRanks(_ checkpoint: PeftCheckpoint.Loaded) -> [(module: String, rank: Int)]? {
        guard checkpoint.config.peftType == .adalora else { return nil }
        let pattern = checkpoint.config.adaloraRankPattern ?? [:]
        let initial = checkpoint.config.adalora?.initialRank ?? checkpoint.config.rank
        return checkpoint.modules.map { module in (module, pattern["\(module).lora_E"].map { $0.filter { $0 }.count } ?? initial) }
    }
}
