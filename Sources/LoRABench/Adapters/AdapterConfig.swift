/// Which base biases train alongside the adapters (peft's `bias`).
public enum BiasMode: String, CaseIterable, Sendable {
    /// No bias trains.
    case none
    /// Every bias of the model trains (for one layer: its own bias).
    case all
    /// Only the biases of adapted layers train.
    case loraOnly = "lora_only"
}

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

/// The adapted-layer kinds, and the one table that maps a kind to its implementation.
public enum AdapterKind: String, CaseIterable, Sendable {
    case lora
    case dora
    /// AdaLoRA's SVD-form layer P·Λ·Q (peft mode).
    case adalora

    /// Wraps a frozen base layer in an adapter of this kind.
    public func make(base: FrozenLinear, config: AdapterConfig, seed: UInt64) throws -> any Adapter {
        switch self {
        case .lora: return try LoRA(base: base, config: config, seed: seed)
        case .dora: return try DoRA(base: base, config: config, seed: seed)
        case .adalora: return try AdaLoRALayer(base: base, config: config, seed: seed)
        }
    }
}
