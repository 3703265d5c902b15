import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// The normalised subspace similarity of two LoRA A factors (Hu et al. 2021, §7.2, Eq. 4):
///
///     φ(A₁, A₂, i, j) = ‖U₁ⁱᵀ U₂ʲ‖²_F / min(i, j)  ∈ [0, 1]
///
/// where U₁ⁱ holds the top-i right singular vectors of A₁ (the input directions the adapter reads
/// most) and U₂ʲ the top-j of A₂. It is the mean squared cosine of the principal angles between
/// the two subspaces: 1 when the smaller one lies inside the larger, about max(i, j)/in for
/// unrelated random subspaces. The paper uses it to show that the top directions of a rank-8
/// and a rank-64 adapter overlap, so that a small r already captures them.
///
/// `a1` is [r₁, in] and `a2` is [r₂, in] (torch layout of `lora_A`), with r ≤ in. Returns the
/// [r₁, r₂] matrix whose entry (i−1, j−1) is φ(i, j). Every entry comes from one product
/// M = V₁ · V₂ᵀ of the singular-vector rows: ‖U₁ⁱᵀ U₂ʲ‖²_F is the sum of M² over its top-left
/// i × j block, so a 2-D prefix sum (in Double) gives all r₁·r₂ values at once.
///
/// A rank-deficient factor (e.g. all zeros) still has orthonormal singular vectors, but those of
/// its zero singular values are arbitrary, and so are the φ values that involve them.
public func subspaceSimilarity(_ a1: Matrix, _ a2: Matrix) throws -> Matrix {
    let operation = "subspaceSimilarity"
    guard a1.cols == a2.cols else {
        throw AnalysisError.shapeMismatch(operation: operation, first: a1.shape, second: a2.shape,
                                          requirement: "both A factors must read the same number of input features (columns)")
    }
    for factor in [a1, a2] {
        guard factor.rows > 0, factor.cols > 0 else { throw AnalysisError.empty(operation: operation, shape: factor.shape) }
        guard factor.rows <= factor.cols else {
            throw AnalysisError.rankOutOfRange(operation: operation, rank: factor.rows, maximum: factor.cols)
        }
    }
    let overlap = matmul(try svd(a1).vt, .n, try svd(a2).vt, .t)
    let (r1, r2) = (overlap.rows, overlap.cols)

    // energy[i][j] = Σ_{a < i, b < j} M[a, b]², with a zero first row and column.
    var energy = [[Double]](repeating: [Double](repeating: 0, count: r2 + 1), count: r1 + 1)
    var phi = Matrix(rows: r1, cols: r2)
    for i in 1...r1 {
        for j in 1...r2 {
            let m = Double(overlap[i - 1, j - 1])
            energy[i][j] = m * m + energy[i - 1][j] + energy[i][j - 1] - energy[i - 1][j - 1]
            // Float rounding can push a perfect overlap a hair above 1.
            phi[i - 1, j - 1] = Float(min(energy[i][j] / Double(min(i, j)), 1))
        }
    }
    return phi
}
