import LoRABenchAdapters
import LoRABenchTraining

/// How a run's optimizer is built from its trainable parameters: learning-rate groups (LoRA+),
/// frozen factors and projected gradients (LoRA-FA). A policy is named in a variant entry
/// (`{name: dora, loraplus: {lr_ratio: 16}}`) or stands for LoRA with it (`- loraplus`). Each
/// policy is one file and one line of `VariantRegistry.optimizerPolicies`.
public protocol OptimizerPolicy: Sendable {
    /// The manifest's name for it (`loraplus`, `lorafa`).
    static var name: String { get }
    static var summary: String { get }
    /// The keys its block may hold.
    static var keys: [String] { get }
    init(settings: any SettingsReader) throws
    /// Its resolved settings for settings.yaml.
    var settings: SettingList { get }
    /// Changes the layers before their trainable parameters are collected (LoRA-FA freezes A);
    /// throws for layers the policy cannot train.
    func prepare(_ layers: [NamedAdapter]) throws
    /// The optimizer over `parameters` (every trainable tensor of the model, head included).
    func makeOptimizer(parameters: [Parameter], layers: [NamedAdapter], learningRate: Float, weightDecay: Float) throws -> AdamW
}

extension OptimizerPolicy {
    public func prepare(_ layers: [NamedAdapter]) throws {}
}
