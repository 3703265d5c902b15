import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// LoRA-FA's pieces: the pseudo-inverse, the projection of B's gradient, the Hugging Face Adam
/// semantics, and which tensors the policy trains.
@Suite struct LoRAFATests {
    static func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch { return "\(error)" }
        return nil
    }

    @Test func pseudoInverseSatisfiesThePenroseConditions() throws {
        var rng = SplitMix64(seed: 1)
        let square = Matrix.gaussian(4, 4, std: 1, using: &rng)
        #expect(relativeError(matmul(square, .n, try pseudoInverse(square), .n), .identity(4)) < 1e-5)
        // Rank 2 in a 4×5 matrix: M·M⁺·M = M and M⁺·M·M⁺ = M⁺.
        let low = matmul(Matrix.gaussian(4, 2, std: 1, using: &rng), .n, Matrix.gaussian(2, 5, std: 1, using: &rng), .n)
        let inverse = try pseudoInverse(low)
        #expect(inverse.shape == [5, 4])
        #expect(relativeError(matmul(matmul(low, .n, inverse, .n), .n, low, .n), low) < 1e-5)
        #expect(relativeError(matmul(matmul(inverse, .n, low, .n), .n, inverse, .n), inverse) < 1e-5)
    }

    @Test func projectedGradientSolvesTheDampedNormalEquations() throws {
        var rng = SplitMix64(seed: 2)
        let a = Parameter("lora_A", role: .loraA, value: .gaussian(3, 6, std: 0.5, using: &rng))
        let b = Parameter("lora_B", role: .loraB, value: .gaussian(5, 3, std: 0.5, using: &rng))
        b.grad = .gaussian(5, 3, std: 1, using: &rng)
        let projection = try LoRAFAProjection(pairs: [(a: a, b: b, scaling: 2)])
        // g̃ = (1/s²)·g·(A·Aᵀ + δI)⁻¹ ⇔ s²·g̃·(A·Aᵀ + δI) = g.
        var gram = matmul(a.value, .n, a.value, .t)
        for k in 0..<3 { gram[k, k] += 1e-8 }
        var rebuilt = matmul(projection.transformedGradient(of: b), .n, gram, .n)
        scale(&rebuilt, by: 4)
        #expect(relativeError(rebuilt, b.grad) < 1e-5)
        // A parameter it does not know keeps its gradient.
        a.grad = .gaussian(3, 6, std: 1, using: &rng)
        #expect(projection.transformedGradient(of: a) == a.grad)
    }

    /// One step from p0 with gradient g, written out for both semantics (ε large enough to tell them apart).
    @Test(arguments: [AdamW.Options.torch, .huggingFace])
    func adamStepFollowsTheChosenSemantics(_ options: AdamW.Options) throws {
        let (lr, wd, beta1, beta2, eps) = (0.01, 0.1, 0.9, 0.999, 0.01)
        let p0 = [0.5, -1.0, 2.0], g = [0.2, -0.3, 0.05]
        let parameter = Parameter("w", role: .weight, value: Matrix(rows: 1, cols: 3, storage: p0.map(Float.init)))
        parameter.grad = Matrix(rows: 1, cols: 3, storage: g.map(Float.init))
        let optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: [parameter], learningRate: Float(lr), weightDecay: Float(wd))],
                              beta1: Float(beta1), beta2: Float(beta2), epsilon: Float(eps), options: options)
        optimizer.step()
        let expected = zip(p0, g).map { p, g -> Double in
            let m = (1 - beta1) * g, v = (1 - beta2) * g * g
            if options == .torch {
                return p * (1 - lr * wd) - lr / (1 - beta1) * m / (v.squareRoot() / (1 - beta2).squareRoot() + eps)
            }
            return (p - lr * (1 - beta2).squareRoot() / (1 - beta1) * m / (v.squareRoot() + eps)) * (1 - lr * wd)
        }
        #expect(relativeError(parameter.value.storage, expected.map(Float.init)) < 1e-6)
    }

    @Test func bTrainsWithTheProjectionEverythingElsePlainAndAIsFrozen() throws {
        var rng = SplitMix64(seed: 3)
        let lora = try LoRA(base: FrozenLinear(weight: .gaussian(8, 6, std: 0.3, using: &rng), trainBias: true),
                            config: AdapterConfig(rank: 2, alpha: 4), seed: 1)
        let dora = try DoRA(base: FrozenLinear(weight: .gaussian(5, 8, std: 0.3, using: &rng)), config: AdapterConfig(rank: 2), seed: 2)
        let head = Parameter("classifier.weight", role: .weight, value: .gaussian(2, 5, std: 0.3, using: &rng))
        let layers = [NamedAdapter(name: "fc1", adapter: lora), NamedAdapter(name: "fc2", adapter: dora)]
        let policy = LoRAFA()
        try policy.prepare(layers)
        #expect(!lora.a.isTrainable && !dora.a.isTrainable)
        let trainable = lora.parameters + dora.parameters + [head]
        #expect(!trainable.contains { $0 === lora.a || $0 === dora.a }, "a frozen A is no trainable parameter")
        let optimizer = try policy.makeOptimizer(parameters: trainable, layers: layers, learningRate: 1e-3, weightDecay: 0.01)
        #expect(optimizer.options == .huggingFace && optimizer.epsilon == LoRAFA.epsilon)
        #expect(optimizer.groups.map(\.name) == ["lorafa_B", "others"])
        #expect(optimizer.groups[0].parameters.map(ObjectIdentifier.init) == [lora.b, dora.b].map(ObjectIdentifier.init))
        #expect(optimizer.groups[0].gradientTransform != nil && optimizer.groups[1].gradientTransform == nil)
        #expect(optimizer.groups[1].parameters.map(ObjectIdentifier.init)
            == [lora.base.bias, dora.magnitude, head].map(ObjectIdentifier.init))
        #expect(optimizer.groups.allSatisfy { $0.learningRate == 1e-3 && $0.weightDecay == 0.01 })

        // A step moves B (from its zero init) and never A.
        let model = AdaptedMLP(layers: layers)
        let x = Matrix.gaussian(4, 6, std: 1, using: &rng)
        let initialA = lora.a.value
        let (_, gradient) = meanSquaredError(try model.forward(x, training: true), .gaussian(4, 5, std: 1, using: &rng))
        try model.backward(gradient)
        optimizer.step()
        #expect(lora.a.value == initialA)
        #expect(lora.a.grad == .zeros(2, 6), "backward does not spend a GEMM on a frozen A")
        #expect(frobeniusNorm(lora.b.value) > 0)
    }

    @Test func layersWithoutAFrozenAAndATrainedBAreRejected() throws {
        let base = { try FrozenLinear(weight: .zeros(16, 24)) }
        let adalora = try AdaLoRALayer(base: base(), config: AdapterConfig(rank: 4), seed: 0)
        let needsFactors = "LoRA-FA trains B against a frozen A, so it needs layers with LoRA factors (lora, dora, adalora svd-prune)"
        #expect(Self.message { try LoRAFA().prepare([NamedAdapter(name: "q", adapter: adalora)]) }
            == "lorafa = q (AdaLoRALayer) is not allowed; \(needsFactors)")
        let vera = try VeRALayer(base: base(), projections: VeRAProjections(rank: 4, maxInFeatures: 24, maxOutFeatures: 16, seed: 0), rank: 4)
        #expect(Self.message { try LoRAFA().prepare([NamedAdapter(name: "v", adapter: vera)]) }
            == "lorafa = v (VeRALayer) is not allowed; \(needsFactors)")
    }

    @Test func aNonFiniteAIsReportedBeforeTraining() throws {
        var a = Matrix.zeros(2, 3)
        a[0, 1] = .nan
        let lora = try LoRA(base: FrozenLinear(weight: .zeros(4, 3)), a: a, b: .zeros(4, 2), scaling: 1)
        let layers = [NamedAdapter(name: "fc", adapter: lora)]
        #expect(Self.message { _ = try LoRAFA().makeOptimizer(parameters: lora.parameters, layers: layers, learningRate: 1e-3, weightDecay: 0) }
            == "sgesdd: the 2x2 input contains NaN or infinity; check for a diverged run before decomposing its weights")
    }
}
