/// How trainable parameters are split into optimizer groups. LoRA+ is one such policy, not an
/// adapter: it composes with LoRA, DoRA and AdaLoRA alike.
public enum GroupingPolicy: Equatable, Sendable {
    /// One group: every parameter at the base learning rate.
    case uniform
    /// LoRA+ (Hayou et al. 2024, Eq. 5): η_B = λ·η_A. As peft's `create_loraplus_optimizer`:
    /// B and every 1-D parameter (DoRA magnitude, biases) at λ·η, the rest (A, Λ, head weight) at η;
    /// biases take no weight decay.
    case loraPlus(ratio: Float)

    public func groups(for parameters: [Parameter], learningRate: Float, weightDecay: Float) -> [ParameterGroup] {
        switch self {
        case .uniform:
            return [ParameterGroup(name: "all", parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)]
        case let .loraPlus(ratio):
            let fast = parameters.filter { $0.role == .loraB || $0.role.isVector }
            let slow = parameters.filter { !($0.role == .loraB || $0.role.isVector) }
            return [
                ParameterGroup(name: "groupA", parameters: slow, learningRate: learningRate, weightDecay: weightDecay),
                ParameterGroup(name: "groupB", parameters: fast.filter { $0.role != .bias },
                               learningRate: learningRate * ratio, weightDecay: weightDecay),
                ParameterGroup(name: "groupB_no_decay", parameters: fast.filter { $0.role == .bias },
                               learningRate: learningRate * ratio, weightDecay: 0),
            ].filter { !$0.parameters.isEmpty }
        }
    }
}
