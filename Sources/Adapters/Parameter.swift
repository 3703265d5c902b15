import LoRABenchKernels

/// What a trainable tensor is, so that policies (LoRA+ learning-rate groups, weight decay,
/// AdaLoRA importance) select by type instead of by name substrings. The roles every variant
/// shares are here; a variant declares its own beside its layer (`ParameterRole.magnitude` in
/// DoRA's folder), so a new one never edits this floor.
public struct ParameterRole: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// 1-D in torch terms (peft's `param.ndim == 1`): LoRA+ puts such tensors in B's learning-rate group.
    public let isVector: Bool

    public init(_ name: String, isVector: Bool) {
        self.name = name
        self.isVector = isVector
    }

    public var description: String { name }

    /// LoRA's down-projection A [r, in] (AdaLoRA: the right singular vectors Q).
    public static let loraA = ParameterRole("lora_A", isVector: false)
    /// LoRA's up-projection B [out, r] (AdaLoRA: the left singular vectors P).
    public static let loraB = ParameterRole("lora_B", isVector: false)
    /// A bias vector (base-layer bias trained with bias = all | lora_only, or a head's bias).
    public static let bias = ParameterRole("bias", isVector: true)
    /// A full weight matrix trained outright (a classification head).
    public static let weight = ParameterRole("weight", isVector: false)
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
