import LoRABenchAdapters
import LoRABenchTraining

/// LoRA+ (Hayou et al. 2024, Eq. 5): η_B = λ·η_A, an optimizer policy, not an adapter, so it
/// composes with every variant. As peft's `create_loraplus_optimizer`: B and every 1-D parameter
/// (DoRA's magnitude, VeRA's λ, biases) at λ·η, the rest (A, Λ, a head's weight) at η; biases
/// take no weight decay.
public struct LoRAPlus: OptimizerPolicy {
    public static let name = "loraplus"
    public static let summary = "LoRA+ (Hayou et al. 2024): B and 1-D tensors learn at lr_ratio × learning_rate"
    public static let keys = ["lr_ratio"]

    /// λ (peft has no default; the paper recommends 2⁴ for most tasks).
    public var ratio: Double = 16

    public init(ratio: Double = 16) { self.ratio = ratio }

    public init(settings: any SettingsReader) throws {
        if let value = try settings.number("lr_ratio", allowed: "a number > 0 (LoRA+ λ: B learns at λ × learning_rate)", where: { $0 > 0 }) {
            ratio = value
        }
    }

    public var settings: SettingList { [("loraplus_lr_ratio", .number(ratio))] }

    public func makeOptimizer(parameters: [Parameter], layers: [NamedAdapter], learningRate: Float, weightDecay: Float) throws -> AdamW {
        AdamW(groups: groups(for: parameters, learningRate: learningRate, weightDecay: weightDecay))
    }

    public func groups(for parameters: [Parameter], learningRate: Float, weightDecay: Float) -> [ParameterGroup] {
        let isFast: (Parameter) -> Bool = { $0.role == .loraB || $0.role.isVector }
        let fast = parameters.filter(isFast)
        return [
            ParameterGroup(name: "groupA", parameters: parameters.filter { !isFast($0) }, learningRate: learningRate, weightDecay: weightDecay),
            ParameterGroup(name: "groupB", parameters: fast.filter { $0.role != .bias },
                           learningRate: learningRate * Float(ratio), weightDecay: weightDecay),
            ParameterGroup(name: "groupB_no_decay", parameters: fast.filter { $0.role == .bias },
                           learningRate: learningRate * Float(ratio), weightDecay: 0),
        ].filter { !$0.parameters.isEmpty }
    }
}
