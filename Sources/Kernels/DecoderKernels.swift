import CKernels

// The Llama decoder's elementwise and row-wise passes (RMSNorm, RoPE, SwiGLU, the causal softmax,
// the LM loss): CKernels loops built per vector width and picked per call for the CPU, each
// checked bit for bit against a plain Swift loop in Tests/VectorKernelsTests.

/// RMSNorm over rows `rows` of a [·, width] input: `inverses[r]` ← 1/√(mean(x²) + ε) and
/// `output` ← weight ⊙ (x·inverses[r]).
@inline(__always)
public func rmsNormForward(rows: Range<Int>, width: Int, _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, epsilon: Float,
                           output: UnsafeMutablePointer<Float>, inverses: UnsafeMutablePointer<Float>) {
    lorabench_rms_norm_forward(rows.lowerBound, rows.upperBound, width, input, weight, epsilon, output, inverses)
}

/// RMSNorm's ∂L/∂y → ∂L/∂x over rows `rows`, with the forward's input and inverses s and
/// g' = ∂y ⊙ weight: ∂x = s·g' − s³·x·(Σ g'·x)/width, stored into `gradInput` or, with
/// `accumulate`, added to it.
@inline(__always)
public func rmsNormBackward(rows: Range<Int>, width: Int, _ gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                            weight: UnsafePointer<Float>, inverses: UnsafePointer<Float>, accumulate: Bool,
                            into gradInput: UnsafeMutablePointer<Float>) {
    lorabench_rms_norm_backward(rows.lowerBound, rows.upperBound, width, gradOutput, input, weight, inverses, accumulate ? 1 : 0, gradInput)
}

/// Rotates every head (`heads` of `headSize` floats) of rows `rows` of x (row stride `stride`) in
/// place by the rows' cos and sin tables [·, headSize/2]; `sineSign` −1 rotates back.
@inline(__always)
public func ropeRows(_ rows: Range<Int>, heads: Int, headSize: Int, _ x: UnsafeMutablePointer<Float>, stride: Int,
                     cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, sineSign: Float) {
    lorabench_rope_rows(rows.lowerBound, rows.upperBound, heads, headSize, x, stride, cos, sin, sineSign)
}

/// output = SiLU(gate) ⊙ up over `count` floats.
@inline(__always)
public func swigluForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {
    lorabench_swiglu_forward(gate, up, output, count)
}

/// ∂up = ∂out ⊙ SiLU(gate) and ∂gate = ∂out ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate))) over `count` floats.
@inline(__always)
public func swigluBackward(_ gradOutput: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                           gradGate: UnsafeMutablePointer<Float>, gradUp: UnsafeMutablePointer<Float>, count: Int) {
    lorabench_swiglu_backward(gradOutput, gate, up, gradGate, gradUp, count)
}

/// Causal softmax in place over `rows` rows of scores (row stride `stride`): row i over keys
/// 0…lastVisible + i with `keyBias` (0, or −∞ for padding) added, zeros after them; a row with no
/// unpadded visible key becomes zeros.
@inline(__always)
public func causalSoftmaxRows(_ scores: UnsafeMutablePointer<Float>, rows: Int, stride: Int, lastVisible: Int, keyBias: UnsafePointer<Float>) {
    lorabench_causal_softmax_rows(scores, rows, stride, lastVisible, keyBias)
}

/// ∂P → ∂S in place over the rows of `causalSoftmaxRows`: ∂S = P ⊙ (∂P − Σ P ⊙ ∂P) over each row's
/// visible keys, zeros after them.
@inline(__always)
public func causalSoftmaxBackwardRows(_ grad: UnsafeMutablePointer<Float>, probabilities: UnsafePointer<Float>, rows: Int, stride: Int,
                                      lastVisible: Int) {
    lorabench_causal_softmax_backward_rows(grad, probabilities, rows, stride, lastVisible)
}

/// Cross-entropy of logit rows `rows` of [·, vocabulary]: `losses[r]` ← log Σ e^z − z[target], and
/// the row overwritten by (softmax(z) − onehot(target))/totalRows.
@inline(__always)
public func crossEntropyRows(_ rows: Range<Int>, vocabulary: Int, _ logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int>,
                             totalRows: Int, losses: UnsafeMutablePointer<Double>) {
    lorabench_cross_entropy_rows(rows.lowerBound, rows.upperBound, vocabulary, logits, targets, totalRows, losses)
}
