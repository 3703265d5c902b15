import LoRABenchKernels
import LoRABenchAdapters

/// Replaces a parameter's gradient just before an optimizer step uses it (the accumulated
/// `grad` itself is left alone). A `ParameterGroup` may carry one; LoRA-FA's projection of B's
/// gradient is the first.
public protocol GradientTransform: AnyObject {
    /// The gradient the optimizer should use for `parameter`; `parameter.grad` when the transform
    /// does not know it.
    func transformedGradient(of parameter: Parameter) -> Matrix
}
