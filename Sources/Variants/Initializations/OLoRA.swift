import LoRABenchKernels

/// OLoRA (Büyükakyüz 2024): A and B from the reduced QR factorisation of W0, the base replaced
/// by the residual (`init_lora_weights = "olora"`).
public enum OLoRAInit: FactorInitialization {
    public static let name = "olora"
    public static let summary = "B = Q[:, :r], A = R[:r] from the QR of W0 (LAPACK geqrf); the base becomes W0 − s·B·A"

    /// As peft: Q, R = qr(W0); B = Q[:, :r], A = R[:r, :] with no 1/s split, so the residual
    /// W0 − s·B·A depends on s and the adapted layer starts as the base layer.
    public static func factors(for base: Matrix, rank r: Int, scaling: Float, using rng: inout SplitMix64) throws -> InitialFactors {
        let (q, upper) = try qr(base)
        let a = upper.rowSlice(0..<r)
        let b = q.selectingColumns(Array(0..<r))
        var residual = base
        gemm(b, .n, a, .n, into: &residual, alpha: -scaling, beta: 1)
        return InitialFactors(a: a, b: b, residualBase: residual)
    }
}

extension AdapterInit {
    public static let olora = AdapterInit(OLoRAInit.self)
}
