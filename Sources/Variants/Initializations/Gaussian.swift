import LoRABenchKernels

/// A ~ N(0, 1/r²), B = 0 (`init_lora_weights = "gaussian"`).
public enum GaussianInit: FactorInitialization {
    public static let name = "gaussian"
    public static let summary = "A ~ N(0, 1/r²), B = 0"

    public static func factors(for base: Matrix, rank: Int, scaling: Float, using rng: inout SplitMix64) throws -> InitialFactors {
        InitialFactors(a: .gaussian(rank, base.cols, std: 1 / Float(rank), using: &rng), b: .zeros(base.rows, rank))
    }
}

extension AdapterInit {
    public static let gaussian = AdapterInit(GaussianInit.self)
}
