import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchModels
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// Central finite differences of the causal-LM loss against the decoder's backward, on a tiny
/// random Llama (2 layers, width 16, 4 query heads over 2 key/value heads of size 4, SwiGLU 24,
/// vocabulary 32) with LoRA on all fourteen Linears and non-zero B, so every adapter's gradient
/// travels the whole input-side path: the head and final RMSNorm, each layer's SwiGLU, RMSNorms,
/// residuals, grouped-query attention with the causal and padding masks, and RoPE's inverse.
/// In float32 the loss (~3.5) carries rounding of a few 1e-7, which a central difference with
/// h = 1e-2 turns into ~1e-5 of noise per entry while its truncation error h²·f‴/6 is of the same
/// order: the worst tensor then sits at 5e-4. The five-point stencil
/// (8·(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h)))/12h cancels the h² term, so h = 2e-2 halves the
/// noise at no cost in truncation: the worst tensor is at ~2e-4, a relative Frobenius error of
/// 1e-3 per tensor has a 5× margin, and a wrong formula (an un-inverted RoPE gives 1.9) is far above.
@Suite struct LlamaGradientCheckTests {
    static let tolerance = 1e-3
    static let step: Float = 2e-2

    static var config: LlamaConfig { TinyLlama.config }

    static func randomWeights(seed: UInt64) -> LlamaWeights { TinyLlama.randomWeights(seed: seed) }

    /// Every gradient of every LoRA tensor, for two sequences (the second right-padded) whose labels
    /// ignore the padding and the first token.
    @Test func loraGradientsMatchFiniteDifferences() throws {
        var rng = SplitMix64(seed: 11)
        let decoder = try LlamaDecoder(weights: Self.randomWeights(seed: 10)) { module, base in
            let layer = try makeLayer("lora", base: base, config: AdapterConfig(rank: 2, alpha: 4), seed: 3)
            for parameter in layer.parameters where parameter.role == .loraB {
                parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.3, using: &rng)
            }
            return layer
        }
        #expect(decoder.adapters.count == 14)
        let inputIDs = [5, 17, 3, 29, 8, 12, 21, 4, 30, 9, 2, 2]
        let mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
        let labels = [-100, 17, 3, 29, 8, 12, 21, 4, 30, 9, -100, -100]
        func loss() throws -> Double {
            Double(try decoder.loss(inputIDs: inputIDs, attentionMask: mask, labels: labels, batchSize: 2))
        }
        _ = try loss()
        try decoder.backward()
        var worst = (tensor: "", error: 0.0)
        for (name, adapter) in decoder.adapters {
            for parameter in adapter.parameters {
                let analytic = parameter.grad
                var numeric = Matrix(rows: analytic.rows, cols: analytic.cols)
                for index in 0..<parameter.value.count {
                    let original = parameter.value.storage[index]
                    func shiftedLoss(_ offset: Float) throws -> Double {
                        parameter.value.storage[index] = original + offset
                        return try loss()
                    }
                    let near = try shiftedLoss(Self.step) - shiftedLoss(-Self.step)
                    let far = try shiftedLoss(2 * Self.step) - shiftedLoss(-2 * Self.step)
                    parameter.value.storage[index] = original
                    numeric.storage[index] = Float((8 * near - far) / Double(12 * Self.step))
                }
                let error = relativeError(analytic, numeric)
                if error > worst.error { worst = ("\(name).\(parameter.name)", error) }
                #expect(error <= Self.tolerance, "\(name).\(parameter.name): ∂L differs from finite differences by \(error)")
            }
        }
        print("tiny Llama: worst relative error of the LoRA gradients against finite differences \(String(format: "%.2e", worst.error)) (\(worst.tensor))")
    }

    /// The loss is transformers' mean over shifted labels: by hand from the logits of the rows it reads.
    @Test func lossIsTheMeanOverShiftedLabels() throws {
        let decoder = try LlamaDecoder(weights: Self.randomWeights(seed: 12))
        let inputIDs = [1, 2, 3, 4, 5, 6, 7, 8], mask = [1, 1, 1, 1, 1, 1, 1, 0]
        let labels = [1, 2, -100, 4, 5, 6, 7, -100]
        let loss = try decoder.loss(inputIDs: inputIDs, attentionMask: mask, labels: labels, batchSize: 2)
        // Rows 0 → 2, 2 → 4 (row 1 predicts the ignored label 3, row 3 ends its sequence), 4 → 6, 5 → 7.
        let logits = decoder.logits(at: [0, 2, 4, 5])
        func rowLoss(_ row: Int, target: Int) -> Double {
            let z: [Double] = (0..<logits.cols).map { Double(logits[row, $0]) }
            let sum: Double = z.reduce(0) { $0 + exp($1) }
            return log(sum) - z[target]
        }
        let want = (rowLoss(0, target: 2) + rowLoss(1, target: 4) + rowLoss(2, target: 6) + rowLoss(3, target: 7)) / 4
        #expect(abs(Double(loss) - want) <= 1e-6 * abs(want), "loss \(loss), by hand \(want)")
        #expect(throws: LlamaError.self) { try decoder.loss(inputIDs: inputIDs, attentionMask: mask, labels: [Int](repeating: -100, count: 8), batchSize: 2) }
    }

    @Test func backwardNeedsALoss() throws {
        let decoder = try LlamaDecoder(weights: Self.randomWeights(seed: 13))
        #expect(throws: LlamaError.self) { try decoder.backward() }
    }
}
