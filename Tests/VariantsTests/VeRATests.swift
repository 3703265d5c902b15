import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// VeRA's backward against finite differences of a Double reference (as GradientCheckTests), its
/// initialisation, merging, optimizer grouping, and the errors for shapes that do not fit.
@Suite struct VeRATests {
    typealias Check = GradientCheckTests
    static let (maxIn, maxOut) = (8, 7)

    /// Projections larger than the layer, so the slices matter.
    static func projections() throws -> VeRAProjections {
        try VeRAProjections(rank: Check.rank, maxInFeatures: maxIn, maxOutFeatures: maxOut, seed: 5)
    }

    /// L = Σ G ⊙ (x·W0ᵀ + b + λ_b ⊙ ((λ_d ⊙ (x_d·Aᵀ))·Bᵀ)) in Double.
    static func veraLoss(_ v: Check.Values, a: [Double], b: [Double], mask: [Double]?) -> Double {
        let (n, inFeatures, outFeatures, r) = (Check.n, Check.inFeatures, Check.outFeatures, Check.rank)
        var u = Check.linear(v, Check.dropped(v, mask: mask), a, rows: r, cols: inFeatures, inputs: inFeatures)
        for i in 0..<n { for k in 0..<r { u[i * r + k] *= v["vera_lambda_d"]![k] } }
        let z = Check.linear(v, u, b, rows: outFeatures, cols: r, inputs: r)
        var y = Check.linear(v, v["x"]!, v["W0"]!, rows: outFeatures, cols: inFeatures, inputs: inFeatures)
        for i in 0..<y.count { y[i] += v["b"]![i % outFeatures] + v["vera_lambda_b"]![i % outFeatures] * z[i] }
        return Check.loss(y, v)
    }

    @Test(arguments: [Float(0), 0.3])
    func gradientsMatchFiniteDifferences(dropout: Float) throws {
        var setup = Check.Setup()
        var rng = SplitMix64(seed: 17)
        setup.values["vera_lambda_b"] = (0..<Check.outFeatures).map { _ in Double(rng.nextGaussian()) }
        setup.values["vera_lambda_d"] = (0..<Check.rank).map { _ in Double(rng.nextGaussian()) }
        let layer = try VeRALayer(base: Check.base(setup), projections: Self.projections(),
                                  lambdaD: setup.matrix("vera_lambda_d", 1, Check.rank),
                                  lambdaB: setup.matrix("vera_lambda_b", 1, Check.outFeatures), dropout: dropout, seed: 7)
        let mask = dropout > 0 ? try Check.dropoutMask(probability: dropout, seed: 7) : nil
        let a = layer.a.storage.map(Double.init), b = layer.b.storage.map(Double.init)
        try Check.check(layer, setup, reference: { Self.veraLoss($0, a: a, b: b, mask: mask) }, label: "VeRA p=\(dropout)")
    }

    @Test func layerUsesTheLeadingSlicesOfTheSharedProjections() throws {
        let projections = try Self.projections()
        let layer = try VeRALayer(base: FrozenLinear(weight: .zeros(Check.outFeatures, Check.inFeatures)),
                                  projections: projections, rank: Check.rank)
        #expect(layer.a == projections.a.selectingColumns(Array(0..<Check.inFeatures)))
        #expect(layer.b == projections.b.rowSlice(0..<Check.outFeatures))
    }

    /// peft's `_kaiming_init`: U(±√(6/fan_in)) with fan_in = maxIn for vera_A and r for vera_B.
    @Test func projectionsAreKaimingUniformWithGainRootTwoAndReproducible() throws {
        let p = try VeRAProjections(rank: 16, maxInFeatures: 64, maxOutFeatures: 48, seed: 3)
        #expect(p.a.shape == [16, 64] && p.b.shape == [48, 16])
        let boundA = Float(6.0 / 64).squareRoot(), boundB = Float(6.0 / 16).squareRoot()
        let maxA = p.a.storage.map(abs).max()!, maxB = p.b.storage.map(abs).max()!
        #expect(maxA <= boundA && maxA > 0.95 * boundA)
        #expect(maxB <= boundB && maxB > 0.95 * boundB)
        let again = try VeRAProjections(rank: 16, maxInFeatures: 64, maxOutFeatures: 48, seed: 3)
        #expect(again.a == p.a && again.b == p.b)
        let bases = [try FrozenLinear(weight: .zeros(48, 20)), try FrozenLinear(weight: .zeros(10, 64))]
        let covering = try VeRAProjections(rank: 16, covering: bases, seed: 3)
        #expect(covering.a == p.a && covering.b == p.b)
    }

    @Test func freshLayerIsExactlyTheBaseAndTrainsOnlyTheScales() throws {
        var rng = SplitMix64(seed: 2)
        let base = try FrozenLinear(weight: .gaussian(16, 24, std: 0.3, using: &rng), bias: .gaussian(1, 16, std: 0.1, using: &rng))
        // VeRA's rank may exceed the layer's dimensions (the paper uses r up to 1024 on 768-wide layers).
        let projections = try VeRAProjections(rank: 32, maxInFeatures: 24, maxOutFeatures: 16, seed: 1)
        let layer = try VeRALayer(base: base, projections: projections, rank: 32, dInitial: 0.1)
        #expect(layer.lambdaD.value.storage == [Float](repeating: 0.1, count: 32))
        #expect(layer.lambdaB.value.storage == [Float](repeating: 0, count: 16))
        #expect(layer.trainableParameterCount == 32 + 16)
        #expect(layer.parameters.map(\.name) == ["vera_lambda_b", "vera_lambda_d"])
        let x = Matrix.gaussian(5, 24, std: 1, using: &rng)
        #expect(try layer.forward(x, training: true) == base.forward(x))
    }

    @Test func mergedOutputEqualsAdaptedOutputAndUnmergeRestoresBase() throws {
        var rng = SplitMix64(seed: 4)
        let base = try FrozenLinear(weight: .gaussian(12, 10, std: 0.3, using: &rng), bias: .gaussian(1, 12, std: 0.1, using: &rng))
        let layer = try VeRALayer(base: base, projections: VeRAProjections(rank: 6, maxInFeatures: 16, maxOutFeatures: 16, seed: 8),
                                  lambdaD: .gaussian(1, 6, std: 1, using: &rng), lambdaB: .gaussian(1, 12, std: 1, using: &rng))
        let x = Matrix.gaussian(7, 10, std: 1, using: &rng)
        let original = base.weight, adapted = try layer.forward(x, training: false)
        var expected = original
        axpy(1, layer.deltaWeight(), &expected)
        layer.merge()
        #expect(relativeError(base.weight, expected) < 1e-6)
        #expect(relativeError(try layer.forward(x, training: false), adapted) < 1e-6)
        layer.unmerge()
        #expect(relativeError(base.weight, original) < 1e-6)
        #expect(relativeError(try layer.forward(x, training: false), adapted) < 1e-6)
    }

    /// LoRA+ (peft): every 1-D tensor goes to B's group, so λ_d and λ_b get λ·η with weight decay.
    @Test func loraPlusPutsBothScaleVectorsInTheFastGroup() throws {
        let layer = try VeRALayer(base: FrozenLinear(weight: .zeros(16, 24)),
                                  projections: VeRAProjections(rank: 4, maxInFeatures: 24, maxOutFeatures: 16, seed: 0), rank: 4)
        let groups = LoRAPlus(ratio: 16).groups(for: layer.parameters, learningRate: 1e-3, weightDecay: 0.01)
        #expect(groups.map(\.name) == ["groupB"])
        #expect(groups.first?.parameters.map(\.name) == ["vera_lambda_b", "vera_lambda_d"])
        #expect(groups.first?.weightDecay == 0.01)
    }

    static func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch { return "\(error)" }
        return nil
    }

    @Test func shapesThatDoNotFitAreErrors() throws {
        let base = { try FrozenLinear(weight: .zeros(16, 24)) }
        let narrow = try VeRAProjections(rank: 4, maxInFeatures: 20, maxOutFeatures: 16, seed: 0)
        #expect(Self.message { _ = try VeRALayer(base: base(), projections: narrow, rank: 4) }
            == "vera_A / vera_B = [4, 20] / [16, 4] is not allowed; a 16x24 layer needs at least 24 columns of vera_A and 16 rows "
            + "of vera_B; size the shared projections by the largest adapted layer")
        let short = try VeRAProjections(rank: 4, maxInFeatures: 24, maxOutFeatures: 15, seed: 0)
        #expect(Self.message { _ = try VeRALayer(base: base(), projections: short, rank: 4) }?.hasPrefix("vera_A / vera_B = [4, 24] / [15, 4] is not allowed") == true)
        let fitting = try VeRAProjections(rank: 4, maxInFeatures: 24, maxOutFeatures: 16, seed: 0)
        #expect(Self.message { _ = try VeRALayer(base: base(), projections: fitting, rank: 8) }
            == "vera rank = 8 is not allowed; it must equal the shared projections' rank 4")
        #expect(Self.message { _ = try VeRALayer(base: base(), projections: fitting, lambdaD: .zeros(1, 3), lambdaB: .zeros(1, 16)) }
            == "vera_lambda_d has shape [1, 3], expected [1, 4]")
        #expect(Self.message { _ = try VeRALayer(base: base(), projections: fitting, lambdaD: .zeros(1, 4), lambdaB: .zeros(1, 24)) }
            == "vera_lambda_b has shape [1, 24], expected [1, 16]")
        #expect(Self.message { _ = try VeRAProjections(a: .zeros(4, 24), b: .zeros(16, 3)) }
            == "vera_A / vera_B has shape [4, 24, 16, 3], expected [4, 24, 16, 4]")
        #expect(Self.message { _ = try VeRAProjections(rank: 0, maxInFeatures: 24, maxOutFeatures: 16, seed: 0) }
            == "vera rank = 0 is not allowed; it must be at least 1")
        #expect(Self.message { _ = try VeRALayer(base: base(), projections: fitting, rank: 4, dropout: 1) }
            == "dropout = 1.0 is not allowed; it must be in [0, 1)")
        let layer = try VeRALayer(base: base(), projections: fitting, rank: 4)
        #expect(Self.message { _ = try layer.forward(.zeros(3, 7), training: false) } == "layer input has shape [3, 7], expected [3, 24]")
        _ = try layer.forward(.zeros(3, 24), training: false)
        #expect(Self.message { _ = try layer.backward(.zeros(2, 16)) } == "output gradient has shape [2, 16], expected [3, 16]")
    }
}
