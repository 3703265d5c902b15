import LoRABenchKernels

/// A ~ kaiming-uniform, B = 0: peft's default (`init_lora_weights = true`).
public enum KaimingInit: FactorInitialization {
    public static let name = "kaiming"
    public static let summary = "A ~ U(±1/√in), B = 0 (peft's default)"

    /// kaiming_uniform(a = √5) on [r, in]: bound = √3 · √(1/3) / √in = 1/√in.
    public static func factors(for base: Matrix, rank: Int, scaling: Float, using rng: inout SplitMix64) throws -> InitialFactors {
        InitialFactors(a: .uniform(rank, base.cols, bound: 1 / Float(base.cols).squareRoot(), using: &rng), b: .zeros(base.rows, rank))
    }
}

extension AdapterInit {
    public static let kaiming = AdapterInit(KaimingInit.self)
}
