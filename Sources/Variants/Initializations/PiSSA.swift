import LoRABenchKernels

/// PiSSA (Meng et al. 2024, Eq. 2–3): the top-r singular triplets of W0 become the adapter, the
/// rest stays frozen as the residual base (`init_lora_weights = "pissa"`).
public enum PiSSAInit: FactorInitialization {
    public static let name = "pissa"
    public static let summary = "A, B from the top-r SVD of W0 (LAPACK gesdd); the base becomes the residual"

    /// √S on each side, divided by s so that s·B·A = U_r S_r V_rᵀ.
    public static func factors(for base: Matrix, rank r: Int, scaling: Float, using rng: inout SplitMix64) throws -> InitialFactors {
        let decomposition = try svd(base)
        var a = decomposition.vt.rowSlice(0..<r)
        var b = decomposition.u.selectingColumns(Array(0..<r))
        for k in 0..<r {
            let root = (decomposition.singularValues[k] / scaling).squareRoot()
            for j in 0..<base.cols { a[k, j] *= root }
            for i in 0..<base.rows { b[i, k] *= root }
        }
        var residual = base
        gemm(b, .n, a, .n, into: &residual, alpha: -scaling, beta: 1)
        return InitialFactors(a: a, b: b, residualBase: residual)
    }
}

extension AdapterInit {
    public static let pissa = AdapterInit(PiSSAInit.self)
}
