import LoRABenchAdapters
import LoRABenchKernels

/// The settings every LoRA-family adapter shares, with peft's `LoraConfig` defaults.
public struct AdapterConfig: Sendable, Equatable {
    /// r: the rank of ΔW (AdaLoRA peft mode: the initial rank r0).
    public var rank: Int = 8
    /// α: the numerator of the scaling.
    public var alpha: Float = 8
    /// rsLoRA (Kalajdzievski 2023): scale by α/√r instead of α/r, so learning is rank-stable.
    public var useRSLoRA = false
    public var initialization: AdapterInit = .kaiming
    /// Dropout probability on the adapter input (the base path never sees it).
    public var dropout: Float = 0
    public var bias: BiasMode = .none

    public init(rank: Int = 8, alpha: Float = 8, useRSLoRA: Bool = false, initialization: AdapterInit = .kaiming,
                dropout: Float = 0, bias: BiasMode = .none) {
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        self.initialization = initialization
        self.dropout = dropout
        self.bias = bias
    }

    /// s = α/r, or α/√r with rsLoRA.
    public var scaling: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }
}
