import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// Finite-difference checks of every adapter's backward pass. The reference is each variant's
/// forward written again in Double with plain loops; central differences of L = Σ G ⊙ y in
/// Double (h = 1e-6) have error ~1e-9, so the tolerance (1e-4 relative Frobenius) only has to
/// absorb the Float32 rounding of the analytic gradients.
@Suite struct GradientCheckTests {
    static let (n, inFeatures, outFeatures, rank) = (4, 6, 5, 3)
    static let tolerance = 1e-4

    /// Everything a reference forward reads, in Double, keyed by the adapter's parameter names.
    typealias Values = [String: [Double]]

    struct Setup {
        var values: Values
        var rng = SplitMix64(seed: 42)

        init(magnitude: Bool = false, singularValues: Bool = false) {
            var rng = SplitMix64(seed: 42)
            func draw(_ count: Int, _ std: Float = 0.5) -> [Double] { (0..<count).map { _ in Double(rng.nextGaussian() * std) } }
            values = ["x": draw(n * inFeatures, 1), "W0": draw(outFeatures * inFeatures), "b": draw(outFeatures),
                      "G": draw(n * outFeatures, 1), "lora_A": draw(rank * inFeatures), "lora_B": draw(outFeatures * rank)]
            if magnitude { values["lora_magnitude_vector"] = draw(outFeatures).map { 1 + abs($0) } }
            if singularValues { values["lora_E"] = draw(rank) }
        }

        func matrix(_ name: String, _ rows: Int, _ cols: Int) -> Matrix {
            Matrix(rows: rows, cols: cols, storage: values[name]!.map(Float.init))
        }
    }

    // MARK: Double references: L = Σ_ij G_ij · y_ij

    static func linear(_ v: Values, _ x: [Double], _ w: [Double], rows: Int, cols: Int, inputs: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * rows)
        for i in 0..<n { for o in 0..<rows { for j in 0..<inputs { y[i * rows + o] += x[i * inputs + j] * w[o * cols + j] } } }
        return y
    }

    /// s·B·A [out, in].
    static func product(_ a: [Double], _ b: [Double], scaling: Double) -> [Double] {
        var m = [Double](repeating: 0, count: outFeatures * inFeatures)
        for o in 0..<outFeatures { for j in 0..<inFeatures { for k in 0..<rank { m[o * inFeatures + j] += scaling * b[o * rank + k] * a[k * inFeatures + j] } } }
        return m
    }

    static func loss(_ y: [Double], _ v: Values) -> Double { zip(y, v["G"]!).reduce(0) { $0 + $1.0 * $1.1 } }

    static func dropped(_ v: Values, mask: [Double]?) -> [Double] {
        guard let mask else { return v["x"]! }
        return zip(v["x"]!, mask).map(*)
    }

    static func loraLoss(_ v: Values, scaling: Double, mask: [Double]?) -> Double {
        let w = zip(v["W0"]!, product(v["lora_A"]!, v["lora_B"]!, scaling: scaling)).map(+)
        var y = linear(v, v["x"]!, v["W0"]!, rows: outFeatures, cols: inFeatures, inputs: inFeatures)
        let adapter = zip(linear(v, dropped(v, mask: mask), w, rows: outFeatures, cols: inFeatures, inputs: inFeatures),
                          linear(v, dropped(v, mask: mask), v["W0"]!, rows: outFeatures, cols: inFeatures, inputs: inFeatures)).map(-)
        for i in 0..<y.count { y[i] += adapter[i] + v["b"]![i % outFeatures] }
        return loss(y, v)
    }

    /// DoRA with the row norms frozen at `norms` (peft detaches them).
    static func doraLoss(_ v: Values, scaling: Double, norms: [Double], mask: [Double]?) -> Double {
        let combined = zip(v["W0"]!, product(v["lora_A"]!, v["lora_B"]!, scaling: scaling)).map(+)
        let g = zip(v["lora_magnitude_vector"]!, norms).map(/)
        let base = linear(v, v["x"]!, v["W0"]!, rows: outFeatures, cols: inFeatures, inputs: inFeatures)
        let droppedBase = linear(v, dropped(v, mask: mask), v["W0"]!, rows: outFeatures, cols: inFeatures, inputs: inFeatures)
        let direction = linear(v, dropped(v, mask: mask), combined, rows: outFeatures, cols: inFeatures, inputs: inFeatures)
        let y = (0..<base.count).map { i in
            g[i % outFeatures] * direction[i] + base[i] - droppedBase[i] + v["b"]![i % outFeatures]
        }
        return loss(y, v)
    }

    static func adaloraLoss(_ v: Values, scaling: Double) -> Double {
        var scaledA = v["lora_A"]!
        for k in 0..<rank { for j in 0..<inFeatures { scaledA[k * inFeatures + j] *= v["lora_E"]![k] } }
        let w = zip(v["W0"]!, product(scaledA, v["lora_B"]!, scaling: scaling)).map(+)
        var y = linear(v, v["x"]!, w, rows: outFeatures, cols: inFeatures, inputs: inFeatures)
        for i in 0..<y.count { y[i] += v["b"]![i % outFeatures] }
        return loss(y, v)
    }

    /// Central differences of `f` with respect to every entry of `name`.
    static func numericalGradient(_ v: Values, _ name: String, _ f: (Values) -> Double) -> [Float] {
        let h = 1e-6
        return (0..<v[name]!.count).map { i in
            var plus = v, minus = v
            plus[name]![i] += h
            minus[name]![i] -= h
            return Float((f(plus) - f(minus)) / (2 * h))
        }
    }

    static func check(_ adapter: any Adapter, _ setup: Setup, reference: (Values) -> Double, label: String) throws {
        let x = setup.matrix("x", n, inFeatures)
        _ = try adapter.forward(x, training: true)
        let gradX = try adapter.backward(setup.matrix("G", n, outFeatures))
        var checked = [("x", gradX.storage)]
        for parameter in adapter.parameters where parameter.role != .bias { checked.append((parameter.name, parameter.grad.storage)) }
        var worst = (name: "", error: 0.0)
        for (name, analytic) in checked {
            let error = relativeError(analytic, numericalGradient(setup.values, name, reference))
            #expect(error < tolerance, "\(label): ∂\(name) differs from finite differences by \(error)")
            if error >= worst.error { worst = (name, error) }
        }
        print("gradient check \(label): worst relative error \(worst.error) in ∂\(worst.name)")
    }

    static func base(_ setup: Setup) throws -> FrozenLinear {
        try FrozenLinear(weight: setup.matrix("W0", outFeatures, inFeatures), bias: setup.matrix("b", 1, outFeatures))
    }

    static func dropoutMask(probability: Float, seed: UInt64) throws -> [Double] {
        var dropout = try Dropout(probability: probability, seed: seed)
        _ = dropout.apply(Matrix(rows: n, cols: inFeatures, repeating: 1), training: true)
        return dropout.mask.storage.map(Double.init)
    }

    @Test(arguments: [Float(0), 0.3])
    func loraGradientsMatchFiniteDifferences(dropout: Float) throws {
        let setup = Setup()
        let adapter = try LoRA(base: Self.base(setup), a: setup.matrix("lora_A", Self.rank, Self.inFeatures),
                               b: setup.matrix("lora_B", Self.outFeatures, Self.rank), scaling: 1.5, dropout: dropout, seed: 7)
        let mask = dropout > 0 ? try Self.dropoutMask(probability: dropout, seed: 7) : nil
        try Self.check(adapter, setup, reference: { Self.loraLoss($0, scaling: 1.5, mask: mask) }, label: "LoRA p=\(dropout)")
    }

    /// A zero magnitude entry leaves the fused path (it reads x·Vᵀ back as (y − b)/g, which a zero
    /// g would turn into 0/0), so that case is checked too.
    @Test(arguments: [(Float(0), false), (0.3, false), (0, true)])
    func doraGradientsMatchFiniteDifferencesWithDetachedNorm(dropout: Float, zeroMagnitude: Bool) throws {
        var setup = Setup(magnitude: true)
        if zeroMagnitude { setup.values["lora_magnitude_vector"]![1] = 0 }
        let adapter = try DoRA(base: Self.base(setup), a: setup.matrix("lora_A", Self.rank, Self.inFeatures),
                               b: setup.matrix("lora_B", Self.outFeatures, Self.rank),
                               magnitude: setup.matrix("lora_magnitude_vector", 1, Self.outFeatures), scaling: 1.5, dropout: dropout, seed: 7)
        let combined = zip(setup.values["W0"]!, Self.product(setup.values["lora_A"]!, setup.values["lora_B"]!, scaling: 1.5)).map(+)
        let norms = (0..<Self.outFeatures).map { o in
            (0..<Self.inFeatures).reduce(0.0) { $0 + combined[o * Self.inFeatures + $1] * combined[o * Self.inFeatures + $1] }.squareRoot()
        }
        let mask = dropout > 0 ? try Self.dropoutMask(probability: dropout, seed: 7) : nil
        try Self.check(adapter, setup, reference: { Self.doraLoss($0, scaling: 1.5, norms: norms, mask: mask) }, label: "DoRA p=\(dropout)\(zeroMagnitude ? " m₁=0" : "")")
    }

    @Test func adaloraGradientsMatchFiniteDifferences() throws {
        let setup = Setup(singularValues: true)
        let adapter = try AdaLoRALayer(base: Self.base(setup), a: setup.matrix("lora_A", Self.rank, Self.inFeatures),
                                       b: setup.matrix("lora_B", Self.outFeatures, Self.rank),
                                       e: setup.matrix("lora_E", Self.rank, 1), alpha: 6, initialRank: Self.rank)
        try Self.check(adapter, setup, reference: { Self.adaloraLoss($0, scaling: Double(adapter.scaling)) }, label: "AdaLoRA")
    }

    /// `backward(_:into:accumulate: true)` adds ∂x to what the buffer holds (sgemm with β = 1 on
    /// the fused paths): the same numbers as adding the returned ∂x, for every path.
    @Test(arguments: [Float(0), 0.3])
    func accumulatedInputGradientIsTheSumWithTheBuffer(dropout: Float) throws {
        let setup = Setup(magnitude: true, singularValues: true)
        let (a, b) = (setup.matrix("lora_A", Self.rank, Self.inFeatures), setup.matrix("lora_B", Self.outFeatures, Self.rank))
        let x = setup.matrix("x", Self.n, Self.inFeatures), g = setup.matrix("G", Self.n, Self.outFeatures)
        let adapters: [any Adapter] = [
            try LoRA(base: Self.base(setup), a: a, b: b, scaling: 1.5, dropout: dropout, seed: 7),
            try DoRA(base: Self.base(setup), a: a, b: b, magnitude: setup.matrix("lora_magnitude_vector", 1, Self.outFeatures),
                     scaling: 1.5, dropout: dropout, seed: 7),
            try AdaLoRALayer(base: Self.base(setup), a: a, b: b, e: setup.matrix("lora_E", Self.rank, 1), alpha: 6,
                             initialRank: Self.rank, dropout: dropout, seed: 7),
            FrozenLayer(base: try Self.base(setup)),
        ]
        var rng = SplitMix64(seed: 3)
        for adapter in adapters {
            let earlier = Matrix.gaussian(Self.n, Self.inFeatures, std: 1, using: &rng)
            _ = try adapter.forward(x, training: true)
            let gradInput = try adapter.backward(g)
            var accumulated = earlier
            try adapter.backward(g, into: &accumulated, accumulate: true)
            var expected = earlier
            axpy(1, gradInput, &expected)
            #expect(relativeError(accumulated.storage, expected.storage) < 1e-6, "\(type(of: adapter)) p=\(dropout)")
        }
    }

    @Test func trainedBiasGradientIsTheColumnSumOfTheOutputGradient() throws {
        let setup = Setup()
        let base = try FrozenLinear(weight: setup.matrix("W0", Self.outFeatures, Self.inFeatures), bias: setup.matrix("b", 1, Self.outFeatures), trainBias: true)
        let adapter = try LoRA(base: base, config: AdapterConfig(rank: 2, bias: .all), seed: 1)
        _ = try adapter.forward(setup.matrix("x", Self.n, Self.inFeatures), training: true)
        _ = try adapter.backward(setup.matrix("G", Self.n, Self.outFeatures))
        let expected = (0..<Self.outFeatures).map { o in (0..<Self.n).reduce(Float(0)) { $0 + Float(setup.values["G"]![$1 * Self.outFeatures + o]) } }
        #expect(relativeError(base.bias.grad.storage, expected) < 1e-6)
        #expect(adapter.parameters.contains { $0 === base.bias })
    }

    /// The regulariser's hand-derived gradient 2·C·A/‖C‖ (scaled by γ/M) against finite differences.
    @Test func orthogonalRegularizerGradientMatchesFiniteDifferences() throws {
        let setup = Setup(singularValues: true)
        let layer = try AdaLoRALayer(base: Self.base(setup), a: setup.matrix("lora_A", Self.rank, Self.inFeatures),
                                     b: setup.matrix("lora_B", Self.outFeatures, Self.rank),
                                     e: setup.matrix("lora_E", Self.rank, 1), alpha: 6, initialRank: Self.rank)
        let allocator = try AdaLoRAAllocator(layers: [NamedAdapter(name: "fc", adapter: layer)],
                                             schedule: AdaLoRASchedule(targetRank: 1, initialWarmup: 1, finalWarmup: 1, maskInterval: 1, totalSteps: 10))
        _ = allocator.addRegularizer()
        func regularizer(_ v: Values) -> Double {
            func frobenius(_ p: [Double], rows: Int, cols: Int, rowGram: Bool) -> Double {
                let size = rowGram ? rows : cols
                var total = 0.0
                for i in 0..<size {
                    for j in 0..<size {
                        var entry = rowGram ? (0..<cols).reduce(0.0) { $0 + p[i * cols + $1] * p[j * cols + $1] }
                                            : (0..<rows).reduce(0.0) { $0 + p[$1 * cols + i] * p[$1 * cols + j] }
                        if i == j { entry -= 1 }
                        total += entry * entry
                    }
                }
                return total.squareRoot()
            }
            return 0.5 * (frobenius(v["lora_A"]!, rows: Self.rank, cols: Self.inFeatures, rowGram: true)
                + frobenius(v["lora_B"]!, rows: Self.outFeatures, cols: Self.rank, rowGram: false)) / 2
        }
        for parameter in [layer.a, layer.b] {
            let error = relativeError(parameter.grad.storage, Self.numericalGradient(setup.values, parameter.name, regularizer))
            #expect(error < Self.tolerance, "∂R/∂\(parameter.name) differs from finite differences by \(error)")
        }
    }
}
