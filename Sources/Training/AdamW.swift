import LoRABenchKernels
import LoRABenchAdapters

/// A set of parameters sharing one learning rate and weight decay (torch's param_groups).
public struct ParameterGroup {
    public var name: String
    public var parameters: [Parameter]
    public var learningRate: Float
    public var weightDecay: Float
    /// Replaces each parameter's gradient before the moment update (LoRA-FA's projection of B's); nil: the gradient as is.
    public var gradientTransform: (any GradientTransform)?

    public init(name: String, parameters: [Parameter], learningRate: Float, weightDecay: Float = 0,
                gradientTransform: (any GradientTransform)? = nil) {
        self.name = name
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.gradientTransform = gradientTransform
    }
}

/// AdamW (Loshchilov & Hutter 2019, Algorithm 2) with torch.optim.AdamW's exact semantics:
/// decoupled weight decay applied first, per-parameter step counters, bias correction
/// lr/(1 − β1ᵗ) and √(1 − β2ᵗ), ε added after the bias-corrected square root. `Options` selects the
/// Hugging Face variant instead (AdamWOptions.swift).
public final class AdamW {
    /// The first and second moments of one parameter and its own step count.
    public struct State {
        public var m: Matrix
        public var v: Matrix
        public var step: Int

        public init(m: Matrix, v: Matrix, step: Int) {
            self.m = m
            self.v = v
            self.step = step
        }
    }

    public private(set) var groups: [ParameterGroup]
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let options: Options
    /// Multiplies every group's learning rate (a schedule sets it each step).
    public var learningRateFactor: Float = 1
    private var states: [ObjectIdentifier: State] = [:]

    public init(groups: [ParameterGroup], beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                options: Options = .torch) {
        self.groups = groups
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.options = options
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
            for parameter in group.parameters {
                update(parameter, gradient: group.gradientTransform?.transformedGradient(of: parameter) ?? parameter.grad,
                       learningRate: lr, weightDecay: group.weightDecay)
            }
        }
    }

    public func zeroGradients() {
        for parameter in parameters { parameter.grad.fill(0) }
    }

    private func update(_ p: Parameter, gradient: Matrix, learningRate lr: Float, weightDecay: Float) {
        let key = ObjectIdentifier(p)
        var state = states[key] ?? State(m: .zeros(p.value.rows, p.value.cols), v: .zeros(p.value.rows, p.value.cols), step: 0)
        state.step += 1
        let biasCorrection1 = 1 - Double(beta1).power(state.step)
        let biasCorrection2Root = (1 - Double(beta2).power(state.step)).squareRoot()
        // torch: lr/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + ε); Hugging Face: lr·√(1 − β2ᵗ)/(1 − β1ᵗ) · m / (√v + ε).
        let rawRoot = options.epsilon == .rawRoot
        let stepSize = Float(rawRoot ? Double(lr) * biasCorrection2Root / biasCorrection1 : Double(lr) / biasCorrection1)
        let rootDivisor: Float = rawRoot ? 1 : Float(biasCorrection2Root)
        let decay = 1 - lr * weightDecay
        let (decayBefore, decayAfter): (Float, Float) = options.weightDecay == .beforeStep ? (decay, 1) : (1, decay)
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        p.value.storage.withUnsafeMutableBufferPointer { value in
            gradient.storage.withUnsafeBufferPointer { grad in
                state.m.storage.withUnsafeMutableBufferPointer { m in
                    state.v.storage.withUnsafeMutableBufferPointer { v in
                        for i in 0..<value.count {
                            let g = grad[i]
                            value[i] *= decayBefore
                            m[i] += (g - m[i]) * (1 - b1)
                            v[i] = v[i] * b2 + (1 - b2) * g * g
                            value[i] -= stepSize * m[i] / (v[i].squareRoot() / rootDivisor + eps)
                            value[i] *= decayAfter
                        }
                    }
                }
            }
        }
        states[key] = state
    }
}

extension Double {
    package func power(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<n { result *= self }
        return result
    }
}
