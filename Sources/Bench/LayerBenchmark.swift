import LoRABenchKernels
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchInterop

/// Forward + backward of one adapted linear layer against this machine's sgemm throughput:
/// the issue-3 micro-benchmark (a 768×768 layer at batch 2048, r = 8).
public struct LayerBenchmark {
    public struct Row: Sendable {
        public var name: String
        public var timing: Timing
        public var flops: Double
        public var gflops: Double { flops / timing.median / 1e9 }
    }

    public var features: Int
    public var batch: Int
    public var rank: Int
    public var warmup: Int
    public var repeats: Int
    /// The variants to time, by manifest name.
    public var variants: [String]

    public init(features: Int = 768, batch: Int = 2048, rank: Int = 8, warmup: Int = 3, repeats: Int = 20,
                variants: [String] = ["lora", "dora"]) {
        self.variants = variants
        self.features = features
        self.batch = batch
        self.rank = rank
        self.warmup = warmup
        self.repeats = repeats
    }

    /// The FLOP floor of one forward + backward. Base: x·W0ᵀ and G·W0 (W0 is frozen, so no ∂W0).
    /// A rank-r adapter: x·Aᵀ, z·Bᵀ forward; ∂B, ∂z, ∂A and ∂z·A backward, each 2·N·r·d. What a
    /// variant computes beyond that (DoRA's V = W0 + s·B·A, 2·d²·r) counts against its share.
    package func flops(adapted: Bool) -> Double {
        let n = Double(batch), d = Double(features), r = Double(rank)
        return 2 * (2 * n * d * d) + (adapted ? 6 * (2 * n * r * d) : 0)
    }

    /// The sgemm of the layer's forward shape, [N, d]·[d, d]ᵀ: the throughput the layer can at best reach.
    public func sgemmRow(using rng: inout SplitMix64) -> Row {
        let x = Matrix.gaussian(batch, features, std: 1, using: &rng)
        let w = Matrix.gaussian(features, features, std: 1, using: &rng)
        var y = Matrix.zeros(batch, features)
        let timing = Timing.measure(warmup: warmup, repeats: repeats) { gemm(x, .n, w, .t, into: &y) }
        return Row(name: "sgemm \(batch)x\(features)x\(features)", timing: timing, flops: 2 * Double(batch) * Double(features * features))
    }

    /// Times the frozen base layer alone, then each variant (B made non-zero, as after training).
    public func run(seed: UInt64 = 0) throws -> [Row] {
        var rng = SplitMix64(seed: seed)
        var rows = [sgemmRow(using: &rng)]
        let x = Matrix.gaussian(batch, features, std: 1, using: &rng)
        let g = Matrix.gaussian(batch, features, std: 1, using: &rng)
        let weight = Matrix.gaussian(features, features, std: 0.05, using: &rng)
        let base = try FrozenLinear(weight: weight)
        let baseTiming = Timing.measure(warmup: warmup, repeats: repeats) {
            _ = base.forward(x)
            _ = matmul(g, .n, base.weight, .n)
        }
        rows.append(Row(name: "frozen linear (no adapter)", timing: baseTiming, flops: flops(adapted: false)))
        let module = ModuleShape(name: "layer", inFeatures: features, outFeatures: features)
        for variant in variants {
            let plan = try VariantRegistry.plan(named: variant, for: RunShape(rank: rank, alpha: Double(2 * rank), steps: 1000))
            guard let builder = try plan.layerBuilder(for: [module]) else { continue }
            let adapter = try builder.adapter(for: module, base: FrozenLinear(weight: weight), seed: seed)
            for parameter in adapter.parameters where parameter.role == .loraB {
                parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.01, using: &rng)
            }
            let timing = try Timing.measure(warmup: warmup, repeats: repeats) {
                _ = try adapter.forward(x, training: true)
                _ = try adapter.backward(g)
            }
            rows.append(Row(name: "\(variant) r=\(rank) forward+backward", timing: timing, flops: flops(adapted: true)))
        }
        return rows
    }
}
