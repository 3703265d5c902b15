import LoRABenchKernels
import LoRABenchAdapters

/// What one optimizer step measured.
public struct StepReport: Sendable {
    /// The task loss before the update.
    public var loss: Float
    /// The method's weighted regulariser (AdaLoRA's γ·R; 0 otherwise).
    public var regularizer: Float
    /// ‖∇‖₂ over every trainable parameter, regulariser included.
    public var gradientNorm: Float
    /// The trainable parameter with the largest |value| after the update, and that value (NaN
    /// when any value is NaN): a run can diverge in its parameters while its loss stays finite
    /// (DoRA's normalised direction hides an exploding B).
    public var largestParameter: (name: String, magnitude: Float)
}

/// One optimizer step in the order peft's examples and our fixtures use:
/// forward + backward (`lossAndGradients`, which accumulates gradients and returns the task loss)
/// → the method's regulariser → optimizer step → the method's allocation → zero gradients.
public func trainingStep(_ step: Int, optimizer: AdamW, method: any AdaptationMethod,
                         lossAndGradients: () throws -> Float) throws -> StepReport {
    let loss = try lossAndGradients()
    let regularizer = method.addRegularizer()
    let gradientNorm = optimizer.parameters.reduce(Float(0)) { $0 + dot($1.grad, $1.grad) }.squareRoot()
    optimizer.step()
    try method.afterOptimizerStep(step, optimizer: optimizer)
    optimizer.zeroGradients()
    var largest = (name: "", magnitude: Float(0))
    for parameter in optimizer.parameters {
        let magnitude = parameter.value.largestMagnitude
        if !(magnitude <= largest.magnitude) { largest = (parameter.name, magnitude) }
        if magnitude.isNaN { break }
    }
    return StepReport(loss: loss, regularizer: regularizer, gradientNorm: gradientNorm, largestParameter: largest)
}
