/// A set of parameters sharing one learning rate and weight decay (torch's param_groups).
public struct ParameterGroup {
    public var name: String
    public var parameters: [Parameter]
    public var learningRate: Float
    public var weightDecay: Float

    public init(name: String, parameters: [Parameter], learningRate: Float, weightDecay: Float = 0) {
        self.name = name
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }
}

/// AdamW (Loshchilov & Hutter 2019, Algorithm 2) with torch.optim.AdamW's exact semantics:
/// decoupled weight decay applied first, per-parameter step counters, bias correction
/// lr/(1 − β1ᵗ) and √(1 − β2ᵗ), ε added after the bias-corrected square root.
public final class AdamW {
    /// The first and second moments of one parameter and its own step count.
    public struct State {
        public var m: Matrix
        public var v: Matrix
        public var step: Int
    }

    public private(set) var groups: [ParameterGroup]
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    /// Multiplies every group's learning rate (a schedule sets it each step).
    public var learningRateFactor: Float = 1
    private var states: [ObjectIdentifier: State] = [:]

    public init(groups: [ParameterGroup], beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.groups = groups
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public var parameters: [Parameter] { groups.flatMap(\.parameters) }

    public func state(of parameter: Parameter) -> State? { states[ObjectIdentifier(parameter)] }

    /// Replaces (or, with nil, clears) a parameter's moments: AdaLoRA svd-prune re-factoring
    /// resets or projects them when a tensor changes shape.
    public func setState(_ state: State?, of parameter: Parameter) {
        states[ObjectIdentifier(parameter)] = state
    }

    public func step() {
        for group in groups {
            let lr = group.learningRate * learningRateFactor
            for parameter in group.parameters { update(parameter, learningRate: lr, weightDecay: group.weightDecay) }
        }
    }

    public func zeroGradients() {
        for parameter in parameters { parameter.grad.fill(0) }
    }

    private func update(_ p: Parameter, learningRate lr: Float, weightDecay: Float) {
        let key = ObjectIdentifier(p)
        var state = states[key] ?? State(m: .zeros(p.value.rows, p.value.cols), v: .zeros(p.value.rows, p.value.cols), step: 0)
        state.step += 1
        let biasCorrection1 = 1 - Double(beta1).power(state.step)
        let biasCorrection2Root = Float((1 - Double(beta2).power(state.step)).squareRoot())
        let stepSize = Float(Double(lr) / biasCorrection1)
        let decay = 1 - lr * weightDecay
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        p.value.storage.withUnsafeMutableBufferPointer { value in
            p.grad.storage.withUnsafeBufferPointer { grad in
                state.m.storage.withUnsafeMutableBufferPointer { m in
                    state.v.storage.withUnsafeMutableBufferPointer { v in
                        for i in 0..<value.count {
                            let g = grad[i]
                            value[i] *= decay
                            m[i] += (g - m[i]) * (1 - b1)
                            v[i] = v[i] * b2 + (1 - b2) * g * g
                            value[i] -= stepSize * m[i] / (v[i].squareRoot() / biasCorrection2Root + eps)
                        }
                    }
                }
            }
        }
        states[key] = state
    }
}

extension Double {
    func power(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<n { result *= self }
        return result
    }
}
