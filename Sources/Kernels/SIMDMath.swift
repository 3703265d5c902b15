import CKernels
import Dispatch

// Helpers for the elementwise passes between GEMMs: uninitialised activations, GELU, and
// splitting a pass across the BLAS threads.

extension Matrix {
    /// A matrix whose entries are unspecified, for outputs that are written in full before they
    /// are read: skips the zero fill that a fresh activation buffer would otherwise cost.
    public static func uninitializedActivation(_ rows: Int, _ cols: Int) -> Matrix {
        let count = rows * cols
        return Matrix(rows: rows, cols: cols, storage: [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count })
    }
}

/// GELU(x) = x·Φ(x) over `count` floats from `input` into `output`, and GELU′(x) = Φ(x) + x·φ(x)
/// into `derivative` (three distinct buffers), with Φ from erf by Abramowitz & Stegun 7.1.26
/// (|error| ≤ 1.5·10⁻⁷, the formula of PyTorch's vectorised CPU erf) and e^(−x²/2) from
/// Cephes' polynomial (cephes_exp.h). The loop is C (CKernels), built for several vector widths and
/// picked per call for the CPU.
@inlinable
public func gelu(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>, count: Int) {
    lorabench_gelu_forward(input, output, derivative, count)
}

/// Runs `body` over 0..<count split into contiguous chunks, one per BLAS thread and at least
/// `minimumChunk` long, concurrently: between GEMMs, single-threaded elementwise work would
/// leave the other cores idle. Small jobs stay on the calling thread.
public func forEachChunk(_ count: Int, minimumChunk: Int, _ body: (_ chunk: Range<Int>) -> Void) {
    forEachChunk(count, workers: workerCount(count, minimumChunk: minimumChunk)) { _, chunk in body(chunk) }
}

/// How many chunks `forEachChunk(_:minimumChunk:_:)` splits `count` into: one per BLAS thread,
/// each at least `minimumChunk` long, and at least one.
public func workerCount(_ count: Int, minimumChunk: Int) -> Int {
    max(1, min(BLASThreads.current, count / max(minimumChunk, 1)))
}

/// Runs `body(worker, chunk)` for `workers` contiguous chunks of 0..<count concurrently (on the
/// calling thread when there is one worker); chunk w is (count·w/workers)..<(count·(w+1)/workers).
public func forEachChunk(_ count: Int, workers: Int, _ body: (_ worker: Int, _ chunk: Range<Int>) -> Void) {
    guard workers > 1 else { return body(0, 0..<count) }
    // The chunks are disjoint and `concurrentPerform` returns only when every one is done, so
    // the body (which writes through pointers its caller owns) is never shared across a race.
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            body(worker, (count * worker / workers)..<(count * (worker + 1) / workers))
        }
    }
}
