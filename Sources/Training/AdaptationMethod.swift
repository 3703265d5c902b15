import LoRABenchKernels
import LoRABenchAdapters

/// What spans layers: a model-level policy that runs around each optimizer step (peft's
/// `AdaLoraModel` regulariser and `update_and_allocate`). Plain LoRA and DoRA need none.
///
/// Per step the trainer calls: forward → backward → `addRegularizer()` → optimizer.step() →
/// `afterOptimizerStep(t)` → zeroGradients(), with t the 0-based index of the step just taken.
public protocol AdaptationMethod: AnyObject {
    /// Adds the regulariser's gradient to every adapter parameter and returns its weighted value
    /// (already multiplied by its weight, so the training loss is task loss + this).
    func addRegularizer() -> Float
    /// Budget allocation or re-factoring after the step.
    func afterOptimizerStep(_ step: Int, optimizer: AdamW) throws
    /// The current rank of every adapted module, by module name.
    var ranks: [String: Int] { get }
    /// What the method carries from step to step besides the parameters and the optimizer
    /// (AdaLoRA's importance averages and rank pattern), by name: a checkpoint saves it.
    var state: [String: Matrix] { get }
    /// Continues from a saved `state`.
    func restore(state: [String: Matrix]) throws
}

/// A method that keeps nothing between steps.
public protocol StatelessAdaptationMethod: AdaptationMethod {}

extension StatelessAdaptationMethod {
    public var state: [String: Matrix] { [:] }

    public func restore(state: [String: Matrix]) throws {
        guard state.isEmpty else {
            throw AdapterError.invalidSetting(name: "method state", value: state.keys.sorted().joined(separator: ", "),
                                              allowed: "\(Self.self) keeps no state; the checkpoint is from another method")
        }
    }
}

/// No cross-layer policy: LoRA, DoRA (with or without LoRA+).
public final class FixedRankMethod: StatelessAdaptationMethod {
    public let layers: [NamedAdapter]

    public init(layers: [NamedAdapter]) { self.layers = layers }

    public func addRegularizer() -> Float { 0 }
    public func afterOptimizerStep(_ step: Int, optimizer: AdamW) throws {}
    public var ranks: [String: Int] { Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0.adapter.rank) }) }
}
