/// The Moore–Penrose pseudo-inverse M⁺ [n, m] of M [m, n] through the thin SVD, as
/// `torch.linalg.pinv` computes it: M⁺ = V·diag(1/σ)·Uᵀ, with every σ ≤ rtol·σ_max treated as zero and
/// rtol = max(m, n)·ε_float32 unless given.
public func pseudoInverse(_ m: Matrix, relativeTolerance: Float? = nil) throws -> Matrix {
    let decomposition = try svd(m)
    let sigma = decomposition.singularValues
    let rtol = relativeTolerance ?? Float(max(m.rows, m.cols)) * Float.ulpOfOne
    let cutoff = rtol * (sigma.first ?? 0)
    // Σ⁺·Vᵀ: row k of Vᵀ divided by σ_k (or zeroed), then M⁺ = (Σ⁺Vᵀ)ᵀ·Uᵀ.
    var scaledVt = decomposition.vt
    scaleRows(&scaledVt, by: sigma.map { $0 > cutoff ? 1 / $0 : 0 })
    return matmul(scaledVt, .t, decomposition.u, .t)
}
