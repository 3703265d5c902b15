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

    public init(features: Int = 768, batch: Int = 2048, rank: Int = 8, warmup: Int = 3, repeats: Int = 20) {
        self.features = features
        self.batch = batch
        self.rank = rank
        self.warmup = warmup
        self.repeats = repeats
    }

    /// FLOPs of one forward + backward. Base: x·W0ᵀ and G·W0 (W0 is frozen, so no ∂W0).
    /// Adapter: x·Aᵀ, z·Bᵀ forward; ∂B, ∂z, ∂A and ∂z·A backward — each 2·N·r·d.
    /// DoRA adds V = W0 + s·B·A (2·d²·r) and, with p = 0, nothing else of that order.
    func flops(_ kind: AdapterKind?) -> Double {
        let n = Double(batch), d = Double(features), r = Double(rank)
        let base = 2 * (2 * n * d * d)
        guard let kind else { return base }
        let adapter = 6 * (2 * n * r * d)
        return base + adapter + (kind == .dora ? 2 * d * d * r : 0)
    }

    /// The sgemm of the layer's forward shape, [N, d]·[d, d]ᵀ: the throughput the layer can at best reach.
    public func sgemmRow(using rng: inout SplitMix64) -> Row {
        let x = Matrix.gaussian(batch, features, std: 1, using: &rng)
        let w = Matrix.gaussian(features, features, std: 1, using: &rng)
        var y = Matrix.zeros(batch, features)
        let timing = Timing.measure(warmup: warmup, repeats: repeats) { gemm(x, .n, w, .t, into: &y) }
        return Row(name: "sgemm \(batch)x\(features)x\(features)", timing: timing, flops: 2 * Double(batch) * Double(features * features))
    }

    /// Times the frozen base layer alone, then LoRA and DoRA (B made non-zero, as after training).
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
        rows.append(Row(name: "frozen linear (no adapter)", timing: baseTiming, flops: flops(nil)))
        for kind in [AdapterKind.lora, .dora] {
            let adapter = try kind.make(base: FrozenLinear(weight: weight), config: AdapterConfig(rank: rank, alpha: Float(2 * rank)), seed: seed)
            for parameter in adapter.parameters where parameter.role == .loraB {
                parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.01, using: &rng)
            }
            let timing = try Timing.measure(warmup: warmup, repeats: repeats) {
                _ = try adapter.forward(x, training: true)
                _ = try adapter.backward(g)
            }
            rows.append(Row(name: "\(kind.rawValue) r=\(rank) forward+backward", timing: timing, flops: flops(kind)))
        }
        return rows
    }
}
