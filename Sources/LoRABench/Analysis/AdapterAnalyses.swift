import Foundation

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
            guard let other = others[named.name], let (a1, b1) = factors(named.adapter), let (a2, b2) = factors(other),
                  a1.rows > 0, a2.rows > 0 else { return nil }
            return SubspaceComparison(module: named.name, factorA: try LoRABench.subspaceSimilarity(a1, a2),
                                      factorB: try LoRABench.subspaceSimilarity(b1.transposed, b2.transposed))
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

    /// `lora_A` [r, in] and `lora_B` [out, r] of LoRA and DoRA, or AdaLoRA's P and Q; nil for anything else.
    static func factors(_ adapter: any Adapter) -> (a: Matrix, b: Matrix)? {
        switch adapter {
        case let factored as any LowRankFactored: return (factored.a.value, factored.b.value)
        case let layer as AdaLoRALayer: return (layer.a.value, layer.b.value)
        default: return nil
        }
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
