import LoRABenchKernels

/// Ablation: A = 0, B ~ N(0, 1/r²); the adapter learns through A first.
public enum ZeroAInit: FactorInitialization {
    public static let name = "zero_a"
    public static let summary = "ablation: A = 0, B ~ N(0, 1/r²)"

    public static func factors(for base: Matrix, rank: Int, scaling: Float, using rng: inout SplitMix64) throws -> InitialFactors {
        InitialFactors(a: .zeros(rank, base.cols), b: .gaussian(base.rows, rank, std: 1 / Float(rank), using: &rng))
    }
}

/// Ablation: A and B both ~ N(0, 1/r²); the adapter is not a no-op at step 0.
public enum BothGaussianInit: FactorInitialization {
    public static let name = "both_gaussian"
    public static let summary = "ablation: A, B ~ N(0, 1/r²) (not a no-op at step 0)"

    public static func factors(for base: Matrix, rank: Int, scaling: Float, using rng: inout SplitMix64) throws -> InitialFactors {
        let a = Matrix.gaussian(rank, base.cols, std: 1 / Float(rank), using: &rng)
        return InitialFactors(a: a, b: .gaussian(base.rows, rank, std: 1 / Float(rank), using: &rng))
    }
}

extension AdapterInit {
    public static let zeroA = AdapterInit(ZeroAInit.self)
    public static let bothGaussian = AdapterInit(BothGaussianInit.self)
}
