import LoRABenchKernels

/// What a trainable tensor is, so that policies (LoRA+ learning-rate groups, weight decay,
/// AdaLoRA importance) select by type instead of by name substrings.
public enum ParameterRole: String, Sendable, CaseIterable {
    /// LoRA's down-projection A [r, in] (AdaLoRA: the right singular vectors Q).
    case loraA
    /// LoRA's up-projection B [out, r] (AdaLoRA: the left singular vectors P).
    case loraB
    /// AdaLoRA's singular values Λ [r, 1].
    case singularValues
    /// DoRA's magnitude m [out].
    case magnitude
    /// A bias vector (base-layer bias trained with bias = all | lora_only, or a head's bias).
    case bias
    /// A full weight matrix trained outright (a classification head).
    case weight
    /// A trained 1-D scaling vector: VeRA's λ_d [r] and λ_b [out].
    case scaleVector

    /// 1-D tensors in torch terms; LoRA+ puts them in B's learning-rate group.
    public var isVector: Bool { self == .magnitude || self == .bias || self == .scaleVector }
}

/// A trainable tensor and its gradient. A reference type: layers, optimizers and model-level
/// methods all hold the same parameter, so an optimizer step is seen everywhere at once.
public final class Parameter {
    public let name: String
    public let role: ParameterRole
    public var value: Matrix
    /// Accumulated by backward passes; zeroed by the optimizer's `zeroGradients()`.
    public var grad: Matrix
    /// False for a tensor its layer keeps but nothing trains (LoRA-FA's frozen A): it is left out
    /// of the layer's `parameters`, so no optimizer, report or checkpoint counts it as trainable.
    public var isTrainable = true

    public init(_ name: String, role: ParameterRole, value: Matrix) {
        self.name = name
        self.role = role
        self.value = value
        self.grad = Matrix(rows: value.rows, cols: value.cols)
    }

    public var count: Int { value.count }

    /// Replaces the value with one of another shape (AdaLoRA svd-prune re-factoring); the
    /// gradient is reset to zeros of the new shape.
    public func resize(to newValue: Matrix) {
        value = newValue
        grad = Matrix(rows: newValue.rows, cols: newValue.cols)
    }
}
