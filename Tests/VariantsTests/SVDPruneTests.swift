@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// AdaLoRA's svd-prune mode on a ΔW of known rank and spectrum.
@Suite struct SVDPruneTests {
    /// A LoRA layer (r = 8) whose B·A has rank 3 with singular values 4, 2, 1 (energies 16, 4, 1 of 21).
    static func layerWithKnownSpectrum() throws -> LoRA {
        var rng = SplitMix64(seed: 17)
        let (u, _) = try qr(.gaussian(20, 3, std: 1, using: &rng))
        let (v, _) = try qr(.gaussian(15, 3, std: 1, using: &rng))
        var b = Matrix.zeros(20, 8), a = Matrix.zeros(8, 15)
        let sigma: [Float] = [4, 2, 1]
        for k in 0..<3 {
            for i in 0..<20 { b[i, k] = u[i, k] * sigma[k].squareRoot() }
            for j in 0..<15 { a[k, j] = v[j, k] * sigma[k].squareRoot() }
        }
        // Mix the factors with an invertible 8×8 map so that A and B are not already in SVD form.
        let mixing = Matrix.gaussian(8, 8, std: 1, using: &rng)
        let inverse = try invertUpperTriangular(qr(mixing).r)
        let base = try FrozenLinear(weight: .gaussian(20, 15, std: 0.1, using: &rng))
        return try LoRA(base: base, a: matmul(try qr(mixing).r, .n, a, .n), b: matmul(b, .n, inverse, .n), scaling: 0.5)
    }

    @Test func energyRuleKeepsTheFewestTripletsReachingTheThreshold() {
        #expect(energyRank([4, 2, 1], energy: 0.75, minRank: 1, maxRank: 8) == 1)  // 16/21 = 0.76
        #expect(energyRank([4, 2, 1], energy: 0.9, minRank: 1, maxRank: 8) == 2)   // 20/21 = 0.95
        #expect(energyRank([4, 2, 1], energy: 0.99, minRank: 1, maxRank: 8) == 3)
        #expect(energyRank([4, 2, 1], energy: 0.75, minRank: 2, maxRank: 8) == 2)
        #expect(energyRank([4, 2, 1], energy: 0.99, minRank: 1, maxRank: 2) == 2)
        #expect(energyRank([0, 0], energy: 0.9, minRank: 1, maxRank: 2) == nil)
    }

    @Test(arguments: [(Float(0.9), 2), (0.99, 3), (0.7, 1)])
    func refactoredProductIsTheTruncatedSVD(energy: Float, expectedRank: Int) throws {
        let layer = try Self.layerWithKnownSpectrum()
        let product = matmul(layer.b.value, .n, layer.a.value, .n)
        let reference = try svd(product)
        var truncated = Matrix.zeros(20, 15)
        for k in 0..<expectedRank {
            for i in 0..<20 { for j in 0..<15 { truncated[i, j] += reference.u[i, k] * reference.singularValues[k] * reference.vt[k, j] } }
        }
        let optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: layer.parameters, learningRate: 0)])
        let method = try SVDPruneMethod(layers: [NamedAdapter(name: "fc", adapter: layer)],
                                        settings: SVDPruneSettings(interval: 1, energy: energy, maxRank: 8, startStep: 1, stopStep: 10))
        try method.afterOptimizerStep(1, optimizer: optimizer)
        #expect(layer.rank == expectedRank)
        #expect(layer.a.grad.shape == [expectedRank, 15])
        #expect(relativeError(matmul(layer.b.value, .n, layer.a.value, .n), truncated) < 1e-5)
        #expect(layer.scaling == 0.5, "the scaling stays at its initial value")
    }

    @Test func prunesOnlyOnIntervalStepsWithinTheWindow() throws {
        let layer = try Self.layerWithKnownSpectrum()
        let optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: layer.parameters, learningRate: 0)])
        let method = try SVDPruneMethod(layers: [NamedAdapter(name: "fc", adapter: layer)],
                                        settings: SVDPruneSettings(interval: 5, energy: 0.9, maxRank: 8, startStep: 10, stopStep: 20))
        for step in [5, 11, 25] { try method.afterOptimizerStep(step, optimizer: optimizer) }
        #expect(layer.rank == 8)
        try method.afterOptimizerStep(15, optimizer: optimizer)
        #expect(layer.rank == 2)
    }

    @Test(arguments: OptimizerStatePolicy.allCases)
    func optimizerStateFollowsThePolicy(_ policy: OptimizerStatePolicy) throws {
        let layer = try Self.layerWithKnownSpectrum()
        let optimizer = AdamW(groups: [ParameterGroup(name: "all", parameters: layer.parameters, learningRate: 1e-3)])
        layer.a.grad.fill(0.1)
        layer.b.grad.fill(-0.1)
        optimizer.step()
        let method = try SVDPruneMethod(layers: [NamedAdapter(name: "fc", adapter: layer)],
                                        settings: SVDPruneSettings(interval: 1, energy: 0.9, maxRank: 8, startStep: 1, stopStep: 1,
                                                                   optimizerState: policy))
        try method.afterOptimizerStep(1, optimizer: optimizer)
        switch policy {
        case .reset:
            #expect(optimizer.state(of: layer.a) == nil && optimizer.state(of: layer.b) == nil)
        case .project:
            #expect(optimizer.state(of: layer.a)?.m.shape == [2, 15])
            #expect(optimizer.state(of: layer.b)?.v.shape == [20, 2])
            #expect(optimizer.state(of: layer.a)?.step == 1)
        }
        layer.a.grad.fill(0.1)
        layer.b.grad.fill(-0.1)
        optimizer.step()
        #expect(layer.a.value.isFinite && layer.b.value.isFinite)
    }
}
