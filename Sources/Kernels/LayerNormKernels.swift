import CKernels

/// LayerNorm over rows `rows` of a [·, width] input plus `residual` (when given): `normalized` ← x̂ =
/// (x − μ)/σ, `output` ← x̂ ⊙ gains + shifts and `inverses[r]` ← 1/σ with σ = √(var + epsilon).
/// CKernels' loop (layer_norm.c), built per vector width, bit for bit as the Swift loop it replaced.
@inline(__always)
public func layerNormForward(rows: Range<Int>, width: Int, _ input: UnsafePointer<Float>, adding residual: UnsafePointer<Float>?,
                             gains: UnsafePointer<Float>, shifts: UnsafePointer<Float>, epsilon: Float,
                             normalized: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                             inverses: UnsafeMutablePointer<Float>) {
    lorabench_layer_norm_forward(rows.lowerBound, rows.upperBound, width, input, residual, gains, shifts, epsilon,
                                 normalized, output, inverses)
}

/// ∂L/∂y → ∂L/∂x in place over rows `rows`, with the forward's x̂ and 1/σ:
/// ∂x = (1/σ)·(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)), g = gains ⊙ ∂y.
@inline(__always)
public func layerNormBackward(rows: Range<Int>, width: Int, _ gradient: UnsafeMutablePointer<Float>,
                              normalized: UnsafePointer<Float>, gains: UnsafePointer<Float>, inverses: UnsafePointer<Float>) {
    lorabench_layer_norm_backward(rows.lowerBound, rows.upperBound, width, gradient, normalized, gains, inverses)
}
