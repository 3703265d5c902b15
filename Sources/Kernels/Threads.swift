#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CBLAS

/// The OpenBLAS thread count. Fixed explicitly so that a run's numbers do not depend on the
/// machine's defaults: the same thread count gives bit-identical sgemm results run to run.
///
/// The count is process-wide state, and the worker split of our own kernels follows it, so two
/// callers that each set it would change each other's split mid-computation (the test runner
/// runs suites in parallel; an in-process sweep sets the manifest's count). `with(_:_:)` holds
/// the count for the whole of its body: every change goes through one recursive lock.
public enum BLASThreads {
    /// Runs `body` with every BLAS/LAPACK call and kernel split using `count` threads, and no
    /// other thread able to change the count until it returns; the previous count comes back
    /// afterwards. Nests on one thread.
    public static func with<Result>(_ count: Int, _ body: () throws -> Result) rethrows -> Result {
        precondition(count >= 1, "BLAS thread count must be at least 1")
        holder.lock()
        defer { holder.unlock() }
        let previous = current
        openblas_set_num_threads(Int32(count))
        defer { openblas_set_num_threads(Int32(previous)) }
        return try body()
    }

    /// Sets the number of threads every later BLAS/LAPACK call uses, for the rest of the process
    /// (a command's whole run). Waits while a `with(_:_:)` body holds the count.
    public static func set(_ count: Int) {
        precondition(count >= 1, "BLAS thread count must be at least 1")
        holder.lock()
        defer { holder.unlock() }
        openblas_set_num_threads(Int32(count))
    }

    public static var current: Int { Int(openblas_get_num_threads()) }

    private static let holder = RecursiveLock()
}

/// A pthread mutex that the thread holding it may take again (a sweep's run inside a test's
/// `with` block takes the count a second time).
private final class RecursiveLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
}
