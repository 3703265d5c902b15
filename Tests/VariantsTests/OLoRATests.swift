import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// OLoRA's initialisation: B = Q[:, :r] has orthonormal columns, A = R[:r, :] is upper triangular,
/// and residual + s·B·A gives W0 back, for tall and wide layers.
@Suite struct OLoRATests {
    @Test(arguments: [[12, 10], [6, 16]])
    func oloraSplitsTheBaseIntoOrthonormalFactorsAndResidual(_ shape: [Int]) throws {
        var rng = SplitMix64(seed: 3)
        let original = Matrix.gaussian(shape[0], shape[1], std: 0.3, using: &rng)
        let bias = Matrix.gaussian(1, shape[0], std: 0.1, using: &rng)
        let adapter = try LoRA(base: FrozenLinear(weight: original, bias: bias),
                               config: AdapterConfig(rank: 4, alpha: 8, initialization: .olora), seed: 1)
        #expect(adapter.a.value.shape == [4, shape[1]] && adapter.b.value.shape == [shape[0], 4])
        #expect(relativeError(matmul(adapter.b.value, .t, adapter.b.value, .n), .identity(4)) < 1e-5, "BᵀB must be I")
        for k in 0..<4 { for j in 0..<k { #expect(adapter.a.value[k, j] == 0, "A must be upper triangular") } }
        var rebuilt = adapter.base.weight
        axpy(1, adapter.deltaWeight(), &rebuilt)
        #expect(relativeError(rebuilt, original) < 1e-5, "W_res + s·B·A must give W0")
        // s is not divided out: the adapter's product is s times Q_r·R_r.
        let (q, r) = try qr(original)
        var product = matmul(q.selectingColumns(Array(0..<4)), .n, r.rowSlice(0..<4), .n)
        scale(&product, by: 2)
        #expect(relativeError(adapter.deltaWeight(), product) < 1e-6)
        let x = Matrix.gaussian(5, shape[1], std: 1, using: &rng)
        let baseOutput = try FrozenLinear(weight: original, bias: bias).forward(x)
        #expect(relativeError(try adapter.forward(x, training: true), baseOutput) < 1e-5, "the adapted layer starts as the base")
    }

    @Test func doraWithOLoRAStartsAsTheBase() throws {
        var rng = SplitMix64(seed: 5)
        let original = Matrix.gaussian(10, 8, std: 0.3, using: &rng)
        let adapter = try DoRA(base: FrozenLinear(weight: original), config: AdapterConfig(rank: 3, initialization: .olora), seed: 1)
        let x = Matrix.gaussian(4, 8, std: 1, using: &rng)
        #expect(relativeError(try adapter.forward(x, training: false), matmul(x, .n, original, .t)) < 1e-5)
    }
}
