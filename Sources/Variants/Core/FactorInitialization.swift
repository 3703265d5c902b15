import LoRABenchAdapters
import LoRABenchKernels

/// How a LoRA-family adapter's A and B start (the LoRA paper: B = 0, so training starts exactly
/// at the base model). Each initialisation is one file of `Initializations/` and one line of
/// `VariantRegistry.initializations`; the manifest's `init:` axis names it.
public protocol FactorInitialization: Sendable {
    /// The manifest's `init:` value (peft's `init_lora_weights` where peft has it).
    static var name: String { get }
    static var summary: String { get }
    /// A [r, in] and B [out, r] for the base weight W0 [out, in] at scaling s; an initialisation
    /// that moves part of W0 into the adapter also returns the new frozen base (the residual).
    static func factors(for base: Matrix, rank: Int, scaling: Float, using rng: inout SplitMix64) throws -> InitialFactors
}

public struct InitialFactors {
    public var a: Matrix
    public var b: Matrix
    /// The frozen base after initialisation when it is no longer W0 (PiSSA, OLoRA).
    public var residualBase: Matrix?

    public init(a: Matrix, b: Matrix, residualBase: Matrix? = nil) {
        self.a = a
        self.b = b
        self.residualBase = residualBase
    }
}

/// An initialisation as a value: what a manifest's `init:` resolves to.
public struct AdapterInit: Sendable, Equatable, CustomStringConvertible {
    public let initialization: any FactorInitialization.Type

    public init(_ initialization: any FactorInitialization.Type) { self.initialization = initialization }

    /// The registered initialisation called `name`.
    public init(named name: String) throws {
        let known = VariantRegistry.initializations
        guard let index = known.firstIndex(where: { $0.name == name }) else {
            throw AdapterError.unknownInit(name: name, allowed: known.map { $0.name })
        }
        initialization = known[index]
    }

    public var name: String { initialization.name }
    public var description: String { name }

    public static func == (lhs: AdapterInit, rhs: AdapterInit) -> Bool { lhs.name == rhs.name }
}

/// A's and B's initial values and the base they were drawn for, kept when the initialisation
/// replaced the base by a residual: a saved adapter must then be converted to one that applies
/// to the original W0 (`PeftAdapter`'s residual conversion).
public struct ResidualInitialization {
    public var a: Matrix
    public var b: Matrix
}

/// Everything a config-built LoRA or DoRA layer does before its factors exist: validates the
/// rank, draws A and B (from the dequantized W0 of an NF4 base), replaces the base by the residual
/// when the initialisation says so (an NF4 base quantizes the residual again), and applies the bias
/// mode. Returns the factors, the residual initialisation (if any) and the seed of the layer's
/// dropout masks.
public func initialFactors(base: FrozenLinear, config: AdapterConfig, seed: UInt64)
    throws -> (a: Matrix, b: Matrix, residual: ResidualInitialization?, dropoutSeed: UInt64) {
    try validateRank(config.rank, for: base)
    var rng = SplitMix64(seed: seed)
    let factors = try config.initialization.initialization.factors(for: base.weight, rank: config.rank, scaling: config.scaling,
                                                                    using: &rng)
    var residual: ResidualInitialization?
    if let residualBase = factors.residualBase {
        try base.replaceWeight(residualBase)
        residual = ResidualInitialization(a: factors.a, b: factors.b)
    }
    if config.bias != .none { base.biasIsTrainable = true }
    return (factors.a, factors.b, residual, rng.next())
}
