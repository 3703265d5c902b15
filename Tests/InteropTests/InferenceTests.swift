import Testing
@testable import LoRABenchKernels
@testable import LoRABenchData
@testable import LoRABenchInterop

/// `infer`'s predictions: the argmax of each row, and none (never a trap) for a row whose
/// logits are not all finite, as a diverged adapter's are.
@Suite struct InferenceTests {
    @Test func aRowWithNaNOrInfiniteLogitsHasNoPrediction() {
        let batch = TokenBatch(padding: [([101, 102], [0, 0], 0), ([101, 7, 102], [0, 0, 0], 0), ([101, 102], [0, 0], 0)], padId: 0)
        var logits = Matrix(rows: 3, cols: 2, repeating: 0)
        (logits[0, 0], logits[0, 1]) = (0.2, 1.5)
        (logits[1, 0], logits[1, 1]) = (.nan, 1)
        (logits[2, 0], logits[2, 1]) = (3, -.infinity)
        let inference = Inference(batch: batch, hiddenStates: .zeros(batch.batchSize * batch.seqLen, 4), logits: logits)
        #expect(inference.predictions == [1, nil, nil])
        #expect(Inference(batch: batch, hiddenStates: .zeros(9, 4), logits: nil).predictions == [nil, nil, nil])
    }
}
