import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTraining

/// LoRA-FA (Zhang et al. 2023): LoRA with A frozen at its initialisation and only B trained, an
/// optimizer policy over LoRA or DoRA layers (`- lorafa`, or `{name: dora, lorafa: true}`).
///
/// As peft's `create_lorafa_optimizer` / `LoraFAOptimizer` (0.21.2): A is not trained; B's
/// gradient g is replaced by g̃ = (1/s²)·g·pinv(A·Aᵀ + 1e-8·I), the X that minimises
/// ‖s·X·A − g_W‖_F (so B-only training moves W as close as it can to the full fine-tuning
/// gradient g_W), then a Hugging Face style Adam step: ε = 1e-6 added to √v before the bias
/// correction, weight decay after the step (`AdamW.Options.huggingFace`). Every other trainable
/// tensor (biases, a head, DoRA's magnitude) takes the same Adam step on its own gradient.
///
/// Differences from peft, on purpose:
/// - peft pairs tensors by name order (every parameter whose name contains "lora", in twos, the
///   first taken as A), so with DoRA `lora_magnitude_vector` is paired with the next layer's
///   `lora_A` and every later pair is shifted. Here each layer's own A and B are paired, and the
///   magnitude gets a plain Adam step.
/// - peft uses one s for the whole model; here each layer's own scaling (the same unless rank or
///   α patterns differ per layer).
/// - peft computes g̃ under bf16 autocast where bf16 is available; here it is float32.
public struct LoRAFA: OptimizerPolicy {
    public static let name = "lorafa"
    public static let summary = "LoRA-FA (Zhang et al. 2023): A frozen, B's gradient projected by (A·Aᵀ)⁻¹/s²"
    public static let keys: [String] = []
    /// peft's `LoraFAOptimizer` default ε.
    public static let epsilon: Float = 1e-6
    /// δ in pinv(A·Aᵀ + δ·I).
    public static let damping: Float = 1e-8

    public init() {}
    public init(settings: any SettingsReader) throws {}

    public var settings: SettingList { [("lorafa", .bool(true))] }

    /// Freezes every layer's A; the layers must have LoRA factors.
    public func prepare(_ layers: [NamedAdapter]) throws {
        for named in layers { try Self.factors(named).a.isTrainable = false }
    }

    public func makeOptimizer(parameters: [Parameter], layers: [NamedAdapter], learningRate: Float, weightDecay: Float) throws -> AdamW {
        let pairs = try layers.map { named in
            let layer = try Self.factors(named)
            return (a: layer.a, b: layer.b, scaling: layer.scaling)
        }
        let projected = Set(pairs.map { ObjectIdentifier($0.b) })
        let groups = [
            ParameterGroup(name: "lorafa_B", parameters: pairs.map(\.b), learningRate: learningRate, weightDecay: weightDecay,
                           gradientTransform: try LoRAFAProjection(pairs: pairs)),
            ParameterGroup(name: "others", parameters: parameters.filter { !projected.contains(ObjectIdentifier($0)) && $0.isTrainable },
                           learningRate: learningRate, weightDecay: weightDecay),
        ].filter { !$0.parameters.isEmpty }
        return AdamW(groups: groups, epsilon: Self.epsilon, options: .huggingFace)
    }

    private static func factors(_ named: NamedAdapter) throws -> any LowRankFactored {
        guard let layer = named.adapter as? any LowRankFactored else {
            throw AdapterError.invalidSetting(name: "lorafa", value: "\(named.name) (\(type(of: named.adapter)))",
                                              allowed: "LoRA-FA trains B against a frozen A, so it needs layers with LoRA factors (lora, dora, adalora svd-prune)")
        }
        return layer
    }
}

/// g̃ = (1/s²)·g·pinv(A·Aᵀ + δ·I) for each B, keyed by the B parameter. A is frozen, so the r×r
/// pseudo-inverse is computed once, and again only if A's value changes (a restored checkpoint).
public final class LoRAFAProjection: GradientTransform {
    private struct Pair {
        let a: Parameter
        let scaling: Float
        var factorizedA: Matrix
        var inverse: Matrix
    }

    private var pairs: [ObjectIdentifier: Pair] = [:]

    /// Throws when an A is not finite or the SVD fails, so a bad A is reported before training.
    public init(pairs: [(a: Parameter, b: Parameter, scaling: Float)]) throws {
        for pair in pairs {
            guard pair.a.value.rows == pair.b.value.cols else {
                throw AdapterError.shapeMismatch(what: "lora_A / lora_B", found: pair.a.value.shape + pair.b.value.shape,
                                                 expected: [pair.b.value.cols, pair.a.value.cols, pair.b.value.rows, pair.b.value.cols])
            }
            self.pairs[ObjectIdentifier(pair.b)] = Pair(a: pair.a, scaling: pair.scaling, factorizedA: pair.a.value,
                                                        inverse: try Self.dampedInverse(pair.a.value))
        }
    }

    /// pinv(A·Aᵀ + δ·I) [r, r].
    static func dampedInverse(_ a: Matrix) throws -> Matrix {
        var gram = matmul(a, .n, a, .t)
        for k in 0..<gram.rows { gram[k, k] += LoRAFA.damping }
        return try pseudoInverse(gram)
    }

    public func transformedGradient(of parameter: Parameter) -> Matrix {
        guard var pair = pairs[ObjectIdentifier(parameter)] else { return parameter.grad }
        if pair.a.value != pair.factorizedA {
            pair.factorizedA = pair.a.value
            // A non-finite A (set from outside) gives a non-finite gradient, which the run's
            // divergence check reports, rather than a crash inside the optimizer step.
            pair.inverse = (try? Self.dampedInverse(pair.a.value))
                ?? Matrix(rows: pair.a.value.rows, cols: pair.a.value.rows, repeating: .nan)
            pairs[ObjectIdentifier(parameter)] = pair
        }
        // peft: (1 / s**2) * (g @ pinv), the factor a Python float.
        var projected = Matrix.zeros(0, 0)
        gemm(parameter.grad, .n, pair.inverse, .n, into: &projected, alpha: Float(1 / (Double(pair.scaling) * Double(pair.scaling))))
        return projected
    }
}
