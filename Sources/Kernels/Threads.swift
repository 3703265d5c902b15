import CBLAS

/// The OpenBLAS thread count. Fixed explicitly so that a run's numbers do not depend on the
/// machine's defaults: the same thread count gives bit-identical sgemm results run to run.
public enum BLASThreads {
    /// Sets the number of threads every later BLAS/LAPACK call uses.
    public static func set(_ count: Int) {
        precondition(count >= 1, "BLAS thread count must be at least 1")
        openblas_set_num_threads(Int32(count))
    }

    public static var current: Int { Int(openblas_get_num_threads()) }
}
