import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// Merging folds ΔW into the base (no extra latency at inference); it must not change outputs,
/// and unmerging must give W0 back.
@Suite struct MergeTests {
    static func randomBase(out: Int = 12, in inFeatures: Int = 10, seed: UInt64 = 3) throws -> FrozenLinear {
        var rng = SplitMix64(seed: seed)
        return try FrozenLinear(weight: .gaussian(out, inFeatures, std: 0.3, using: &rng), bias: .gaussian(1, out, std: 0.1, using: &rng))
    }

    /// An adapter whose B is no longer zero, as after training.
    static func trainedAdapter(_ variant: String) throws -> any Adapter {
        let adapter = try makeLayer(variant, base: randomBase(), config: AdapterConfig(rank: 4, alpha: 8), seed: 5)
        var rng = SplitMix64(seed: 9)
        for parameter in adapter.parameters {
            parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.2, using: &rng)
        }
        if let dora = adapter as? DoRA { dora.magnitude.value.storage = dora.magnitude.value.storage.map { abs($0) + 1 } }
        return adapter
    }

    @Test(arguments: adapterVariantNames)
    func mergedOutputEqualsAdaptedOutputAndUnmergeRestoresBase(_ variant: String) throws {
        let adapter = try Self.trainedAdapter(variant)
        var rng = SplitMix64(seed: 11)
        let x = Matrix.gaussian(7, 10, std: 1, using: &rng)
        let original = adapter.base.weight
        let adapted = try adapter.forward(x, training: false)
        let delta = adapter.deltaWeight()
        adapter.merge()
        #expect(adapter.isMerged)
        #expect(relativeError(try adapter.forward(x, training: false), adapted) < 1e-6, "\(variant): merged output differs")
        var expectedMerged = original
        axpy(1, delta, &expectedMerged)
        #expect(relativeError(adapter.base.weight, expectedMerged) < 1e-6, "\(variant): merged weight is not W0 + ΔW")
        adapter.unmerge()
        #expect(!adapter.isMerged)
        #expect(relativeError(adapter.base.weight, original) < 1e-6, "\(variant): unmerge did not restore W0")
        #expect(relativeError(try adapter.forward(x, training: false), adapted) < 1e-6)
    }

    @Test(arguments: [AdapterInit.kaiming, .gaussian])
    func freshLoRAGivesExactlyTheBaseOutput(_ initialization: AdapterInit) throws {
        let base = try Self.randomBase()
        var rng = SplitMix64(seed: 2)
        let x = Matrix.gaussian(5, 10, std: 1, using: &rng)
        var expected = matmul(x, .n, base.weight, .t)
        for r in 0..<expected.rows { for c in 0..<expected.cols { expected[r, c] += base.bias.value.storage[c] } }
        let adapter = try LoRA(base: base, config: AdapterConfig(rank: 4, initialization: initialization), seed: 1)
        #expect(try adapter.forward(x, training: true) == expected)
    }

    @Test func pissaSplitsTheBaseIntoAdapterAndResidual() throws {
        let original = try Self.randomBase().weight
        let adapter = try LoRA(base: FrozenLinear(weight: original), config: AdapterConfig(rank: 4, alpha: 8, initialization: .pissa), seed: 1)
        var rebuilt = adapter.base.weight
        axpy(1, adapter.deltaWeight(), &rebuilt)
        #expect(relativeError(rebuilt, original) < 1e-5, "W_res + s·B·A must give W0")
        let top = try svd(original)
        #expect(abs(frobeniusNorm(adapter.deltaWeight()) - top.singularValues.prefix(4).map { $0 * $0 }.reduce(0, +).squareRoot()) < 1e-4,
                "the adapter must hold the top-4 singular triplets")
    }

    @Test func doraMagnitudeStartsAtTheRowNormsOfTheBase() throws {
        let base = try Self.randomBase()
        let expected = (0..<base.outFeatures).map { r in (0..<base.inFeatures).reduce(Float(0)) { $0 + base.weight[r, $1] * base.weight[r, $1] }.squareRoot() }
        let adapter = try DoRA(base: base, config: AdapterConfig(rank: 4), seed: 1)
        #expect(relativeError(adapter.magnitude.value.storage, expected) < 1e-6)
    }
}
