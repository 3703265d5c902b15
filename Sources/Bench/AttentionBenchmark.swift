import LoRABenchKernels
import LoRABenchModels

/// BERT's multi-head attention on its own, forward + backward, at the model bench's batch: the
/// step's per-head GEMMs and softmax, so that a regression there shows where it is.
public struct AttentionBenchmark {
    public var batch: Int
    public var sequence: Int
    public var width: Int
    public var heads: Int
    public var warmup: Int
    public var repeats: Int

    public init(batch: Int = 32, sequence: Int = 64, width: Int = 384, heads: Int = 12, warmup: Int = 3, repeats: Int = 20) {
        self.batch = batch
        self.sequence = sequence
        self.width = width
        self.heads = heads
        self.warmup = warmup
        self.repeats = repeats
    }

    /// Forward S = QKᵀ and O = PV, 2·N·T·C each; backward ∂V, ∂P, ∂Q, ∂K, 2·N·T·C each (N tokens,
    /// T the sequence length, C the width).
    public var flops: Double { 12 * Double(batch * sequence) * Double(sequence) * Double(width) }

    public func run(seed: UInt64 = 0) -> Timing {
        var rng = SplitMix64(seed: seed)
        let tokens = batch * sequence
        let q = Matrix.gaussian(tokens, width, std: 1, using: &rng), k = Matrix.gaussian(tokens, width, std: 1, using: &rng)
        let v = Matrix.gaussian(tokens, width, std: 1, using: &rng), gradient = Matrix.gaussian(tokens, width, std: 1, using: &rng)
        // Every sequence padded over its last eighth, as real batches are.
        let mask = (0..<tokens).map { $0 % sequence < sequence - sequence / 8 ? 1 : 0 }
        var attention = MultiHeadAttention(headCount: heads)
        var context = Matrix.zeros(tokens, width)
        var gradQ = Matrix.zeros(tokens, width), gradK = Matrix.zeros(tokens, width), gradV = Matrix.zeros(tokens, width)
        return Timing.measure(warmup: warmup, repeats: repeats) {
            attention.forward(query: q, key: k, value: v, attentionMask: mask, sequenceLength: sequence, into: &context)
            attention.backward(gradient, query: q, key: k, value: v, gradQuery: &gradQ, gradKey: &gradK, gradValue: &gradV)
        }
    }
}
